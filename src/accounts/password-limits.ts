export const PASSWORD_MIN_LENGTH = 8;
/** Long enough for any passphrase, short enough to bound the cost of hashing it. */
export const PASSWORD_MAX_LENGTH = 1024;
