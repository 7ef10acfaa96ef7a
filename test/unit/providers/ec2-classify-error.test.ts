import { EC2ServiceException } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';

import { classifyEc2Error, instanceIdsInMessage } from '../../../src/providers/ec2/classify-error.js';

const aws = (name: string, status = 400, message = `${name} happened`) =>
  new EC2ServiceException({ name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status }, message });

describe('classifyEc2Error', () => {
  it.each([
    ['InsufficientInstanceCapacity', 500, 'capacity', 'pool'],
    ['InsufficientCapacity', 500, 'capacity', 'pool'],
    ['Unsupported', 400, 'capacity', 'pool'],
    ['SpotMaxPriceTooLow', 400, 'capacity', 'pool'],
    ['InsufficientFreeAddressesInSubnet', 400, 'capacity', 'subnet'],
    ['MaxSpotInstanceCountExceeded', 400, 'capacity', 'market'],
    ['VcpuLimitExceeded', 400, 'capacity', 'market'],
    ['RequestLimitExceeded', 503, 'throttled', undefined],
    ['ThrottlingException', 400, 'throttled', undefined],
    ['SomethingNew', 429, 'throttled', undefined],
    ['InternalError', 500, 'transient', undefined],
    ['Unavailable', 503, 'transient', undefined],
    ['SomethingNewOnTheServer', 502, 'transient', undefined],
    ['InvalidInstanceID.NotFound', 400, 'not-found', undefined],
    ['InvalidInstanceID.Malformed', 400, 'not-found', undefined],
    ['InvalidParameterValue', 400, 'permanent', undefined],
    ['UnauthorizedOperation', 403, 'permanent', undefined],
    ['InvalidSubnetID.NotFound', 400, 'permanent', undefined],
    ['InvalidAMIID.NotFound', 400, 'permanent', undefined],
    ['AuthFailure', 401, 'permanent', undefined],
  ])('%s (HTTP %i) is %s', (code, status, kind, scope) => {
    const c = classifyEc2Error(aws(code, status));
    expect(c).toEqual({ kind, code, message: `${code} happened`, ...(scope && { scope }) });
  });

  it('network errors are transient, by their Node code', () => {
    const e = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(classifyEc2Error(e)).toMatchObject({ kind: 'transient', code: 'ECONNRESET' });
    const t = Object.assign(new Error('timed out'), { name: 'TimeoutError' });
    expect(classifyEc2Error(t)).toMatchObject({ kind: 'transient', code: 'TimeoutError' });
  });

  it('the SDK\'s throttling trait counts, whatever the code', () => {
    const e = Object.assign(aws('Odd', 400), { $retryable: { throttling: true } });
    expect(classifyEc2Error(e).kind).toBe('throttled');
  });

  it('a plain error or a non-error is permanent', () => {
    expect(classifyEc2Error(new TypeError('boom'))).toMatchObject({ kind: 'permanent', code: 'TypeError', message: 'boom' });
    expect(classifyEc2Error('text')).toEqual({ kind: 'permanent', code: 'Error', message: 'text' });
  });

  it('reads instance ids out of a NotFound message', () => {
    expect(instanceIdsInMessage("The instance IDs 'i-0123456789abcdef0, i-00000000000000fff' do not exist")).toEqual(['i-0123456789abcdef0', 'i-00000000000000fff']);
    expect(instanceIdsInMessage("The instance ID 'i-0123456789abcdef0' does not exist")).toEqual(['i-0123456789abcdef0']);
    expect(instanceIdsInMessage('nothing here')).toEqual([]);
  });
});
