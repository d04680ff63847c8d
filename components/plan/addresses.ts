/**
 * Address plan of the Docker network: Docker's IPAM hands out addresses from the upper half of
 * the subnet (`ipRange`), and the addresses we pin (the proxy pair, the floating IP) come from
 * the lower half, so Docker can never give one of them to another container.
 */
import { createHash } from "node:crypto";
import { DredisError, ErrorCodes } from "../../src/errors.ts";

export interface DockerAddressPlan {
  subnet: string;
  prefixLength: number;
  gateway: string;
  /** Where Docker allocates dynamic addresses: the upper half of the subnet. */
  ipRange: string;
  /** The floating IP of a master-backup pair. */
  floatingIp: string;
  /** Static addresses of the master-backup proxy hosts. */
  proxyAddresses: [string, string];
}

/** Plans the addresses of a Docker subnet; `floatingIp` overrides the default one. */
export function planDockerAddresses(subnet: string, floatingIp?: string): DockerAddressPlan {
  const [base, prefix] = subnet.split("/") as [string, string];
  const prefixLength = Number(prefix);
  const size = 2 ** (32 - prefixLength);
  const network = (toInt(base, "dockerSubnet") & (0xffffffff << (32 - prefixLength))) >>> 0;
  const at = (offset: number) => fromInt(network + offset);
  const vip = floatingIp ?? at(5);
  const vipOffset = toInt(vip, "fixedIp") - network;
  if (vipOffset <= 1 || vipOffset >= size / 2 || vipOffset === 10 || vipOffset === 11)
    throw new DredisError(
      ErrorCodes.CONFIG,
      `invalid fixedIp "${vip}": on docker it must lie in the lower half of ${subnet}, ` +
        `outside Docker's ipRange, and not be the gateway or a proxy address (${at(10)}, ${at(11)})`,
    );
  return {
    subnet: `${fromInt(network)}/${prefixLength}`,
    prefixLength,
    gateway: at(1),
    ipRange: `${at(size / 2)}/${prefixLength + 1}`,
    floatingIp: vip,
    proxyAddresses: [at(10), at(11)],
  };
}

function toInt(address: string, key: string): number {
  const octets = address.split(".").map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255))
    throw new DredisError(ErrorCodes.CONFIG, `invalid ${key} "${address}": expected an IPv4 address`);
  return octets.reduce((n, o) => n * 256 + o, 0);
}

function fromInt(n: number): string {
  return [24, 16, 8, 0].map((shift) => (n >>> shift) & 255).join(".");
}

/**
 * VRRP router id (1-255) of a master-backup pair, derived from the component name so two
 * fleets on one network do not answer each other's advertisements.
 */
export function virtualRouterIdFor(name: string): number {
  return 1 + (createHash("sha256").update(name).digest().readUInt16BE(0) % 255);
}
