import { dictionary } from '@zxcvbn-ts/language-common';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from './password-limits.js';

// ~49,000 passwords seen most in breaches (zxcvbn-ts's list), compared case-insensitively.
const common = new Set(dictionary['passwords-common']);

/**
 * The Python version's rule (≥ 8 characters, a letter and a digit; kept for compatibility although
 * ASVS 6.2.5 advises against composition rules) plus a blocklist of common passwords.
 * Returns what is wrong, or null. Lengths count code points, like Python's len.
 */
export function passwordProblem(password: string): string | null {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) return `The password must have at least ${PASSWORD_MIN_LENGTH} characters`;
  if (length > PASSWORD_MAX_LENGTH) return `The password must have at most ${PASSWORD_MAX_LENGTH} characters`;
  if (!/\p{L}/u.test(password) || !/\p{Nd}/u.test(password)) return 'The password must contain at least one letter and one digit';
  if (common.has(password.toLowerCase())) return 'This password is too common: choose one that is harder to guess';
  return null;
}
