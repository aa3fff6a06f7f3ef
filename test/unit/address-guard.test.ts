import assert from 'node:assert/strict';
import { AddressGuard } from '../../shared/http/address-guard';

describe('SSRF address guard', () => {
  const guard = new AddressGuard();
  it('refuses loopback, private, shared, link-local, metadata, multicast, reserved and their IPv6 forms', () => {
    for (const address of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '169.254.169.254', '0.0.0.0', '224.0.0.1', '240.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:a00:1', '64:ff9b::a00:1', '2002:a00:1::1', '[::1]']) {
      assert.ok(guard.refusal(address), `${address} should be refused`);
    }
  });
  it('allows public addresses', () => {
    for (const address of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111']) assert.equal(guard.refusal(address), undefined, address);
  });
  it('opens exactly the ranges of OUTBOUND_ALLOW', () => {
    const allowing = new AddressGuard('127.0.0.0/8, ::1/128');
    assert.equal(allowing.refusal('127.0.0.1'), undefined);
    assert.equal(allowing.refusal('::1'), undefined);
    assert.ok(allowing.refusal('10.0.0.1'));
    assert.throws(() => new AddressGuard('localhost/8'), /not a CIDR/);
    assert.throws(() => new AddressGuard('10.0.0.0/40'), /prefix/);
  });
});
