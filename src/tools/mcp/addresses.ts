/**
 * URLs, host:port pairs and IP addresses in a connection error become `<address>` (URLs become
 * `url` when given): what the model and /ready show never carries our internal addresses.
 */
export function withoutAddresses(text: string, url = '<address>'): string {
  return text
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s'"<>)]+/gi, url)
    .replace(/\[[0-9a-f:.]+\](?::\d+)?/gi, '<address>')
    .replace(/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b/g, '<address>')
    .replace(/\b[a-z0-9-]+(?:\.[a-z0-9-]+)*:\d{2,5}\b/gi, '<address>');
}
