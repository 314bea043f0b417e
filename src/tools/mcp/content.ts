import type { CallToolResult, ContentBlock } from '@modelcontextprotocol/sdk/types.js';

/**
 * An MCP tool result as the text the model reads. A tool message carries text only, so binary
 * content (images, audio, blobs) is described, not inlined: base64 would cost the model many
 * tokens and tell it nothing.
 */
export function resultText(result: CallToolResult | { toolResult: unknown }): string {
  if ('toolResult' in result) return json(result.toolResult); // protocol 2024-10-07 servers
  const blocks = result.content ?? [];
  if (blocks.length === 0 && result.structuredContent !== undefined) return json(result.structuredContent);
  return blocks.map(blockText).join('\n');
}

function blockText(block: ContentBlock): string {
  switch (block.type) {
    case 'text':
      return block.text;
    case 'image':
    case 'audio':
      return `[${block.type} ${block.mimeType}, ${base64Bytes(block.data)} bytes, not shown]`;
    case 'resource': {
      const resource = block.resource;
      const label = `[resource ${resource.uri}${resource.mimeType ? ` (${resource.mimeType})` : ''}`;
      return 'text' in resource ? `${label}]\n${resource.text}` : `${label}, ${base64Bytes(resource.blob)} bytes of binary data, not shown]`;
    }
    case 'resource_link':
      return `[resource link ${block.name}: ${block.uri}${block.description ? ` (${block.description})` : ''}]`;
    default:
      return json(block);
  }
}

function base64Bytes(data: string): number {
  const padding = data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0;
  return Math.max(0, Math.floor((data.length * 3) / 4) - padding);
}

function json(value: unknown): string {
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return String(value);
  }
}
