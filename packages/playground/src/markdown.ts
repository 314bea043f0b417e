import MarkdownIt from 'markdown-it';

/**
 * Model output is untrusted: `html: false` makes markdown-it escape every tag the model writes, and
 * its link check refuses javascript:, vbscript:, file: and data: (except images) URLs. Links open in
 * a new tab without a referrer or an opener.
 */
const markdown = new MarkdownIt({ html: false, linkify: true, breaks: true, typographer: false });

const defaultLinkOpen = markdown.renderer.rules.link_open ?? ((tokens, index, options, _env, self) => self.renderToken(tokens, index, options));
markdown.renderer.rules.link_open = (tokens, index, options, env, self) => {
  const token = tokens[index]!;
  token.attrSet('target', '_blank');
  token.attrSet('rel', 'noopener noreferrer nofollow');
  return defaultLinkOpen(tokens, index, options, env, self);
};

export function renderMarkdown(text: string): string {
  return markdown.render(text);
}
