import { useEffect, useState } from 'preact/hooks';
import type { ChassisClient } from '@agent-chassis/client';
import { explain } from './errors.js';

const users = (text: string) =>
  text
    .split(',')
    .map((user) => user.trim())
    .filter((user) => user !== '');

/** The owner's sharing settings of one session: public flag, whitelist, blacklist. */
export function SharingPanel({ client, sessionId }: { client: ChassisClient; sessionId: string }) {
  const [owner, setOwner] = useState(false);
  const [isPublic, setPublic] = useState(false);
  const [whitelist, setWhitelist] = useState('');
  const [blacklist, setBlacklist] = useState('');
  const [message, setMessage] = useState<string | null>(null);

  useEffect(() => {
    setOwner(false);
    setMessage(null);
    client.getSession(sessionId).then(
      (session) => {
        if (session.access === undefined) return;
        setOwner(true);
        setPublic(session.access.is_public);
        setWhitelist(session.access.whitelist.join(', '));
        setBlacklist(session.access.blacklist.join(', '));
      },
      () => setOwner(false),
    );
  }, [client, sessionId]);

  if (!owner) return null;
  const save = async (event: Event) => {
    event.preventDefault();
    try {
      const saved = await client.setSessionAccess(sessionId, { is_public: isPublic, whitelist: users(whitelist), blacklist: users(blacklist) });
      setMessage(`Saved: ${saved.is_public ? 'public' : 'private'}, ${saved.whitelist.length} allowed, ${saved.blacklist.length} blocked.`);
    } catch (caught) {
      setMessage(explain(caught));
    }
  };
  return (
    <details class="sharing" data-testid="sharing">
      <summary>Sharing</summary>
      <form onSubmit={(e) => void save(e)}>
        <label class="check">
          <input type="checkbox" data-testid="share-public" checked={isPublic} onChange={(e) => setPublic(e.currentTarget.checked)} /> Public: anyone signed in who has the id may read and continue it
        </label>
        <label for="whitelist">Whitelist (user ids, comma-separated)</label>
        <input id="whitelist" data-testid="share-whitelist" value={whitelist} onInput={(e) => setWhitelist(e.currentTarget.value)} />
        <label for="blacklist">Blacklist (user ids, comma-separated)</label>
        <input id="blacklist" data-testid="share-blacklist" value={blacklist} onInput={(e) => setBlacklist(e.currentTarget.value)} />
        <button type="submit" data-testid="share-save">
          Save sharing
        </button>
        {message !== null && (
          <p role="status" data-testid="share-status">
            {message}
          </p>
        )}
      </form>
    </details>
  );
}
