// Short-lived ECR logins fetched by the coordinator (its task role needs ecr:GetAuthorizationToken) and handed
// to one job's Docker client: for pulls the instance role cannot do, and for `docker push` from a DinD job.
//
// One token per region serves every registry the caller's role can reach there (registryIds is deprecated),
// and it lives 12 h. GetAuthorizationToken is throttled per account and region at 20/s with a burst of 200,
// shared with every credential helper in the account: tokens are cached until REFRESH_MARGIN_MS before
// expiry, and concurrent callers share one request.

import { GetAuthorizationTokenCommand, type ECRClient } from '@aws-sdk/client-ecr';
import { PermanentError, RetryableError, errorMessage, type Clock, type Logger } from '../../core/index.js';

export const REFRESH_MARGIN_MS = 30 * 60_000;
const DEFAULT_TOKEN_LIFETIME_MS = 12 * 3600_000;
const IAM_ACTION = 'ecr:GetAuthorizationToken';

export interface EcrLogin {
  /** The registry host, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com. */
  registry: string;
  /** Always `AWS` for ECR. */
  username: string;
  /** A secret: mask it (see `secretsOf`). */
  password: string;
  /** ms since the epoch. */
  expiresAt: number;
}

export interface EcrRegistry {
  registry: string;
  accountId: string;
  region: string;
}

const REGISTRY = /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?$/;

/** `<account>.dkr.ecr.<region>.amazonaws.com[.cn]` (an `https://` or a trailing `/` is tolerated). */
export function parseEcrRegistry(registry: string): EcrRegistry {
  const host = registry.trim().replace(/^https:\/\//, '').replace(/\/+$/, '').toLowerCase();
  const m = REGISTRY.exec(host);
  if (!m) throw new PermanentError(`not an ECR registry: ${JSON.stringify(registry)} (expected <account>.dkr.ecr.<region>.amazonaws.com)`);
  return { registry: host, accountId: m[1]!, region: m[2]! };
}

export interface EcrLoginsOptions {
  /** One client, or a factory by region when registries live in several regions. */
  ecr: ECRClient | ((region: string) => ECRClient);
  clock: Clock;
  logger: Logger;
  /** Fetch a fresh token this long before the cached one expires (default 30 min). */
  refreshMarginMs?: number;
}

interface RegionToken {
  username: string;
  password: string;
  expiresAt: number;
  refreshAt: number;
}

interface CacheEntry {
  promise: Promise<RegionToken>;
  /** Set once the promise resolved. */
  token?: RegionToken;
}

export class EcrLogins {
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly margin: number;
  private readonly clientFactory: ((region: string) => ECRClient) | undefined;
  private readonly singleClient: ECRClient | undefined;
  private readonly clients = new Map<string, ECRClient>();
  private readonly tokens = new Map<string, CacheEntry>();

  constructor(o: EcrLoginsOptions) {
    this.clock = o.clock;
    this.logger = o.logger;
    this.margin = o.refreshMarginMs ?? REFRESH_MARGIN_MS;
    if (typeof o.ecr === 'function') this.clientFactory = o.ecr;
    else this.singleClient = o.ecr;
  }

  /**
   * A login per distinct registry, in the order given. One GetAuthorizationToken per region, reused until
   * 30 min before it expires. Throws PermanentError (not an ECR registry, access denied: the message names
   * the registries and the IAM action) or RetryableError (throttling, 5xx, network, credentials loading).
   */
  async loginFor(registries: readonly string[]): Promise<EcrLogin[]> {
    const refs = [...new Map(registries.map((r) => parseEcrRegistry(r)).map((r) => [r.registry, r] as const)).values()];
    const byRegion = new Map<string, string[]>();
    for (const r of refs) byRegion.set(r.region, [...(byRegion.get(r.region) ?? []), r.registry]);
    const tokens = new Map<string, RegionToken>();
    await Promise.all(
      [...byRegion].map(async ([region, regs]) => {
        tokens.set(region, await this.tokenFor(region, regs));
      }),
    );
    return refs.map((r) => {
      const t = tokens.get(r.region)!;
      return { registry: r.registry, username: t.username, password: t.password, expiresAt: t.expiresAt };
    });
  }

  private tokenFor(region: string, registries: string[]): Promise<RegionToken> {
    const cached = this.tokens.get(region);
    if (cached && (cached.token === undefined || this.clock.now() < cached.token.refreshAt)) return cached.promise;
    const entry: CacheEntry = { promise: this.fetch(region, registries) };
    this.tokens.set(region, entry);
    entry.promise.then(
      (t) => {
        entry.token = t;
      },
      () => {
        if (this.tokens.get(region) === entry) this.tokens.delete(region);
      },
    );
    return entry.promise;
  }

  private async fetch(region: string, registries: string[]): Promise<RegionToken> {
    const client = await this.clientFor(region, registries);
    const fetchedAt = this.clock.now();
    let data;
    try {
      const out = await client.send(new GetAuthorizationTokenCommand({}));
      data = out.authorizationData?.[0];
    } catch (e) {
      const err = classifyEcrError(e, region, registries);
      this.logger.warn({ region, registries, error: (e as { name?: string }).name ?? 'Error' }, 'ECR login failed');
      throw err;
    }
    if (!data?.authorizationToken) throw new PermanentError(`ECR login for ${registries.join(', ')} (region ${region}): no authorization data returned`);
    const { username, password } = decodeAuthorizationToken(data.authorizationToken, region);
    const expiresAt = data.expiresAt instanceof Date ? data.expiresAt.getTime() : fetchedAt + DEFAULT_TOKEN_LIFETIME_MS;
    // A token that lives less than twice the margin (never from AWS, possible from a fake) is reused for half
    // its life rather than fetched again on every call.
    const refreshAt = expiresAt - Math.min(this.margin, Math.max(0, (expiresAt - fetchedAt) / 2));
    this.logger.info({ region, registries, expiresAt: new Date(expiresAt).toISOString() }, 'fetched ECR login');
    return { username, password, expiresAt, refreshAt };
  }

  private async clientFor(region: string, registries: string[]): Promise<ECRClient> {
    if (this.clientFactory) {
      let c = this.clients.get(region);
      if (!c) {
        c = this.clientFactory(region);
        this.clients.set(region, c);
      }
      return c;
    }
    const client = this.singleClient!;
    const clientRegion = await client.config.region();
    if (clientRegion !== region) {
      throw new PermanentError(
        `ECR registry ${registries.join(', ')} is in region ${region} but the ECR client is for ${clientRegion}; give EcrLogins a client factory by region`,
      );
    }
    return client;
  }
}

function decodeAuthorizationToken(token: string, region: string): { username: string; password: string } {
  const decoded = Buffer.from(token, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i <= 0 || i === decoded.length - 1) throw new PermanentError(`ECR authorization token from ${region} is not "<user>:<password>"`);
  return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

/** SDK error → PermanentError | RetryableError, with a message an operator can act on. */
export function classifyEcrError(e: unknown, region: string, registries: readonly string[]): Error {
  const name = (e as { name?: unknown })?.name;
  const errName = typeof name === 'string' ? name : 'Error';
  const status = (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  const where = `ECR login for ${registries.join(', ')} (region ${region})`;
  const aws = oneLine(errorMessage(e));
  if (/AccessDenied|NotAuthorized|UnauthorizedOperation/i.test(errName)) {
    return new PermanentError(
      `${where} was denied: the coordinator's task role needs the IAM action ${IAM_ACTION} (on Resource "*"). AWS said: ${errName}: ${aws}`,
      { cause: e },
    );
  }
  if (/^(UnrecognizedClient|InvalidSignature|InvalidClientTokenId|SignatureDoesNotMatch)/.test(errName)) {
    return new PermanentError(`${where}: the coordinator's AWS credentials were rejected (${errName})`, { cause: e });
  }
  const retryable =
    /Throttl|TooManyRequests|RequestLimitExceeded|ServerException|ServiceUnavailable|InternalError|Timeout|ExpiredToken|CredentialsProviderError/i.test(errName) ||
    status === 429 ||
    (status !== undefined && status >= 500) ||
    status === undefined; // no HTTP answer at all: a network error
  if (retryable) return new RetryableError(`${where} failed, will retry: ${errName}: ${aws}`, { cause: e });
  return new PermanentError(`${where} failed: ${errName}: ${aws}`, { cause: e });
}

function oneLine(s: string): string {
  const line = s.replace(/\s+/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

function basicAuth(l: EcrLogin): string {
  return Buffer.from(`${l.username}:${l.password}`, 'utf8').toString('base64');
}

export interface DockerConfigOptions {
  /** A default credential store for every registry WITHOUT a login here. Docker reads every registry from a
   *  set credsStore and ignores `auths`, so it cannot be combined with logins: refused then. */
  credsStore?: 'ecr-login';
  /** Per-registry helpers (`credHelpers`), e.g. the job image's own ECR registry → `ecr-login` (instance
   *  role). A helper for a registry that also has a login would shadow the login: refused. */
  extraCredHelpers?: Readonly<Record<string, string>>;
}

/**
 * The text of a Docker `config.json` holding `logins` as `auths` entries (what `docker login` writes
 * without a store). For a per-job DOCKER_CONFIG dir, removed after the job; mask `secretsOf(logins)`.
 */
export function dockerConfigJson(logins: readonly EcrLogin[], o: DockerConfigOptions = {}): string {
  if (o.credsStore !== undefined && logins.length > 0) {
    throw new TypeError(
      'dockerConfigJson: credsStore would make Docker ignore the logins in auths; name helper registries in extraCredHelpers instead',
    );
  }
  const auths: Record<string, { auth: string }> = {};
  for (const l of logins) Object.defineProperty(auths, l.registry, { value: { auth: basicAuth(l) }, enumerable: true, writable: true, configurable: true });
  const config: { auths: typeof auths; credHelpers?: Record<string, string>; credsStore?: string } = { auths };
  const helpers = Object.entries(o.extraCredHelpers ?? {});
  for (const [registry] of helpers) {
    if (Object.hasOwn(auths, registry)) throw new TypeError(`dockerConfigJson: credHelpers entry for ${registry} would shadow its login`);
  }
  if (helpers.length > 0) config.credHelpers = Object.fromEntries(helpers);
  if (o.credsStore !== undefined) config.credsStore = o.credsStore;
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** Every form in which a login's secret can appear (the password, and the base64 `auth` of config.json):
 *  add them to the job's masked values. */
export function secretsOf(logins: readonly EcrLogin[]): string[] {
  return [...new Set(logins.flatMap((l) => [l.password, basicAuth(l)]))];
}
