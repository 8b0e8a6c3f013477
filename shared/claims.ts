/** Claims of a Gatehouse access token (contract section 2). */
export const Role = { PLAYER: "player", ADMIN: "admin" } as const;
export type Role = (typeof Role)[keyof typeof Role];

export interface AccessClaims {
  /** user id */
  sub: string;
  /** session id: one per login per device */
  sid: string;
  /** unique token id */
  jti: string;
  /** the user's token version when the token was issued */
  ver: number;
  /** issued at, seconds */
  iat: number;
  /** expires at, seconds */
  exp: number;
  iss: string;
  aud: string;
  role: Role;
}

/** A token pair as answered by login, register, guest, refresh and password change. */
export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  /** access token lifetime in seconds */
  expiresIn: number;
  sessionId: string;
  user: PublicUser;
}

export interface PublicUser {
  id: string;
  username: string;
  role: Role;
}
