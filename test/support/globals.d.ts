// Tests read many JSON bodies of known shape; typing each one adds noise without catching bugs.
declare global {
  interface Response {
    json(): Promise<any>;
  }
}
export {};
