/** Who is calling, as every module sees it. `userId` null = anonymous (open mode without X-User-ID). */
export interface Principal {
  userId: string | null;
  via: 'api_key' | 'jwt' | 'open';
}
