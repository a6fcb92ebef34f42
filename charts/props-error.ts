/** Props that would deploy something broken: the message names the construct and the props. */
export class PropsError extends Error {
  override name = 'PropsError';

  constructor(construct: string, message: string) {
    super(`${construct}: ${message}`);
  }
}
