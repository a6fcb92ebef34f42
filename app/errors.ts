/**
 * Errors a request can end in, independent of HTTP: app.ts maps each to its status code in one
 * place (see its onError).
 */
export class InvalidRequestError extends Error {
  override name = 'InvalidRequestError';
}

/** An unknown model, model version or path. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** A body in an encoding the server cannot decode (Content-Encoding). */
export class UnsupportedMediaTypeError extends Error {
  override name = 'UnsupportedMediaTypeError';
}

export class PayloadTooLargeError extends Error {
  override name = 'PayloadTooLargeError';
}

/** An operation of a protocol that this server does not offer (e.g. loading another model). */
export class UnsupportedOperationError extends Error {
  override name = 'UnsupportedOperationError';
}

/** The model is not loaded yet, or failed to. */
export class NotReadyError extends Error {
  override name = 'NotReadyError';
}
