import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deploymentIdentity, deploymentKeySecret, isValidSystemId } from '../../../src/gitlab/system-id.js';

const token = () => `glrt-${randomBytes(12).toString('hex')}`;

describe('deployment identity', () => {
  it('is the same for every process of one deployment, and a valid GitLab system_id', () => {
    const t = token();
    const a = deploymentIdentity({ fleet: 'ci', gitlabUrl: 'https://gitlab.example.com', token: t });
    const b = deploymentIdentity({ fleet: 'ci', gitlabUrl: 'https://gitlab.example.com', token: t });
    expect(a).toEqual(b);
    expect(isValidSystemId(a.systemId)).toBe(true);
    expect(a.systemId).toMatch(/^s_[0-9a-f]{12}$/);
    expect(a.coordinatorId).toMatch(/^ci-[0-9a-f]{12}$/);
  });

  it('differs for another fleet, GitLab or token', () => {
    const t = token();
    const base = deploymentIdentity({ fleet: 'ci', gitlabUrl: 'https://gitlab.example.com', token: t });
    const others = [
      deploymentIdentity({ fleet: 'ci2', gitlabUrl: 'https://gitlab.example.com', token: t }),
      deploymentIdentity({ fleet: 'ci', gitlabUrl: 'https://other.example.com', token: t }),
      deploymentIdentity({ fleet: 'ci', gitlabUrl: 'https://gitlab.example.com', token: token() }),
    ];
    for (const o of others) {
      expect(o.systemId).not.toBe(base.systemId);
      expect(o.coordinatorId).not.toBe(base.coordinatorId);
    }
  });

  it('never reveals the token', () => {
    const t = token();
    const id = deploymentIdentity({ fleet: 'ci', gitlabUrl: 'https://gitlab.example.com', token: t });
    const body = t.slice('glrt-'.length);
    for (let i = 0; i + 6 <= body.length; i++) expect(JSON.stringify(id)).not.toContain(body.slice(i, i + 6));
  });

  it('accepts the system_id shapes GitLab knows', () => {
    expect(isValidSystemId('s_0123456789ab')).toBe(true);
    expect(isValidSystemId('r_AbCdEf012345')).toBe(true);
    expect(isValidSystemId('x_0123456789ab')).toBe(false);
  });
});

describe('deployment machine key secret', () => {
  it('is 32 bytes, the same for every process of one deployment, another for another fleet, GitLab or token', () => {
    const t = token();
    const of = (fleet: string, gitlabUrl: string, tok: string) => deploymentKeySecret({ fleet, gitlabUrl, token: tok }).toString('hex');
    const base = of('ci', 'https://gitlab.example.com', t);
    expect(base).toHaveLength(64);
    expect(of('ci', 'https://gitlab.example.com', t)).toBe(base);
    for (const other of [of('ci2', 'https://gitlab.example.com', t), of('ci', 'https://other.example.com', t), of('ci', 'https://gitlab.example.com', token())]) {
      expect(other).not.toBe(base);
    }
  });

  it('shares nothing with the published ids (another HMAC label)', () => {
    const o = { fleet: 'ci', gitlabUrl: 'https://gitlab.example.com', token: token() };
    const secret = deploymentKeySecret(o).toString('hex');
    const id = deploymentIdentity(o);
    expect(secret).not.toContain(id.systemId.slice(2));
    expect(secret).not.toContain(id.coordinatorId.slice(3));
  });
});
