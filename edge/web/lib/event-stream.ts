// Reads a text/event-stream body with fetch (not EventSource: it needs no CORS credentials mode and can be aborted).

/** Called per event; returning true ends the stream (the reader is cancelled). */
export type EventHandler = (name: string, data: string) => boolean | undefined;

/** Calls onEvent(name, data) for each event of the response's body; resolves at the end of the stream. */
export async function readEventStream(response: Response, onEvent: EventHandler): Promise<void> {
  if (!response.body) return;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const dispatch = (block: string): boolean => {
    let name = 'message';
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith('event:')) name = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (data.length || name !== 'message') return onEvent(name, data.join('\n')) === true;
    return false;
  };
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done) {
      if (buffer.trim()) dispatch(buffer);
      return;
    }
    buffer += decoder.decode(chunk.value, { stream: true });
    const parts = buffer.split(/\r?\n\r?\n/);
    buffer = parts.pop() ?? '';
    for (const part of parts) {
      if (dispatch(part)) {
        reader.cancel().catch(() => {});
        return;
      }
    }
  }
}
