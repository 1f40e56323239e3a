/**
 * The credential candidates a KLAP/AES handshake tries. The owner's TP-Link account comes first;
 * then the pairs some devices fall back to (plugs never provisioned to the cloud, or ones that
 * intermittently switch to a built-in pair). For KLAP the extra candidates cost nothing: each is
 * checked offline against the one server proof of handshake1.
 */

/** A TP-Link account (or built-in pair). The e-mail is used exactly as written (hashes are case-sensitive). */
export interface Account {
  readonly username: string;
  readonly password: string;
}

/** Which candidate matched: the user's account, a built-in default, or the blank pair. */
export type CredentialKind = 'account' | 'default-kasa' | 'default-tapo' | 'blank';

export interface Candidate {
  readonly kind: CredentialKind;
  readonly account: Account;
}

/** Built-in pairs, as the devices know them (facts: notes §2.5). Camera pairs are left out: no meters. */
export const DEFAULT_KASA: Account = { username: 'kasa@tp-link.net', password: 'kasaSetup' };
export const DEFAULT_TAPO: Account = { username: 'test@tp-link.net', password: 'test' };
export const BLANK: Account = { username: '', password: '' };

/** The candidates in the order they are tried: the account (when configured), defaults, blank. */
export function candidates(account: Account | null): Candidate[] {
  const list: Candidate[] = [];
  if (account !== null) list.push({ kind: 'account', account });
  list.push({ kind: 'default-kasa', account: DEFAULT_KASA });
  list.push({ kind: 'default-tapo', account: DEFAULT_TAPO });
  list.push({ kind: 'blank', account: BLANK });
  return list;
}
