import type { FC } from 'hono/jsx';
import { Layout, Notice } from './layout.js';

export const SignInPage: FC<{ next: string; error?: string; info?: string }> = ({ next, error, info }) => (
  <Layout title="Sign in" signedIn={false}>
    <div class="signin card">
      <h1>Sign in</h1>
      {error ? (
        <Notice tone="bad">
          <span data-testid="sign-in-error">{error}</span>
        </Notice>
      ) : null}
      {info ? <Notice tone="info">{info}</Notice> : null}
      <form method="post" action="/console/sign-in">
        <input type="hidden" name="next" value={next} />
        <label>
          Admin token
          <input type="password" name="token" autocomplete="current-password" required autofocus />
        </label>
        <button class="primary" type="submit">
          Sign in
        </button>
      </form>
      <p class="muted small">The gateway's ADMIN_TOKEN. The console keeps a session cookie derived from it, never the token itself.</p>
    </div>
  </Layout>
);

export const DisabledPage: FC = () => (
  <Layout title="Console disabled" signedIn={false}>
    <div class="signin card">
      <h1>Console disabled</h1>
      <p>The operator console needs ADMIN_TOKEN to be set on the gateway.</p>
    </div>
  </Layout>
);

export const ErrorPage: FC<{ status: number; message: string; requestId?: string; signedIn: boolean }> = ({ status, message, requestId, signedIn }) => (
  <Layout title={`Error ${status}`} signedIn={signedIn}>
    <h1>{`Error ${status}`}</h1>
    <Notice tone="bad">{message}</Notice>
    {requestId ? (
      <p class="muted small">
        Request id <code>{requestId}</code>
      </p>
    ) : null}
  </Layout>
);
