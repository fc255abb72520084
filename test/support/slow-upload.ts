// A raw-socket HTTP/1.1 client that sends a large body slowly while reading whatever the server answers, and says
// whether it got a status line or a reset: the way a real client on a slow link meets an early rejection.
import { connect } from 'node:net';

export interface SlowUpload {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** The body; sent in `chunkBytes` pieces with `delayMs` between them. */
  body: Uint8Array;
  chunkBytes: number;
  delayMs: number;
  /** Give up after this long (the try then counts as a failure with error 'timeout'). */
  timeoutMs?: number;
}

export interface SlowUploadResult {
  /** The status of the response, if a status line was read before the connection went. */
  status: number | null;
  /** The response body (as much as arrived). */
  body: string;
  /** Bytes of the request body the socket accepted before it stopped. */
  sent: number;
  /** The socket error (ECONNRESET, EPIPE, ...) if there was one. */
  error: string | null;
}

export function slowUpload(port: number, request: SlowUpload): Promise<SlowUploadResult> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let sent = 0;
    let error: string | null = null;
    let finished = false;
    const timer = setTimeout(() => {
      error ??= 'timeout';
      socket.destroy();
    }, request.timeoutMs ?? 30_000);

    const parse = () => {
      const text = received.toString('latin1');
      const headEnd = text.indexOf('\r\n\r\n');
      if (headEnd < 0) return { status: null, body: '', complete: false };
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? Number.NaN);
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, headEnd))?.[1] ?? Number.NaN);
      const body = received.subarray(headEnd + 4).toString('utf8');
      return { status, body, complete: Number.isFinite(length) && received.length - headEnd - 4 >= length };
    };
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      const { status, body } = parse();
      resolve({ status, body, sent, error });
    };

    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (parse().complete && sent >= request.body.byteLength) socket.end();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error ??= err.code ?? err.message;
    });
    socket.on('close', finish);

    socket.once('connect', async () => {
      const head = [
        `${request.method} ${request.path} HTTP/1.1`,
        'host: 127.0.0.1',
        `content-length: ${request.body.byteLength}`,
        ...Object.entries(request.headers).map(([k, v]) => `${k}: ${v}`),
        '',
        '',
      ].join('\r\n');
      socket.write(head);
      while (sent < request.body.byteLength && !socket.destroyed && !socket.writableEnded) {
        const piece = request.body.subarray(sent, sent + request.chunkBytes);
        const flushed = socket.write(piece);
        sent += piece.byteLength;
        if (!flushed) await new Promise<void>((r) => socket.once('drain', r).once('close', r));
        if (request.delayMs > 0) await new Promise((r) => setTimeout(r, request.delayMs));
      }
      // The whole body is out: if the answer is already complete, close our side; otherwise 'data' will.
      if (!socket.destroyed && parse().complete) socket.end();
    });
  });
}
