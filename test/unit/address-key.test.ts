/** The client address the per-address limits key on. */
import { describe, expect, it } from "vitest";
import { addressKey } from "../../server/http/rate-limits";

describe("addressKey", () => {
  it("keeps IPv4 as is and folds IPv4-mapped IPv6 into it", () => {
    expect(addressKey("198.51.100.7")).toBe("198.51.100.7");
    expect(addressKey("::ffff:198.51.100.7")).toBe("198.51.100.7");
    expect(addressKey("::FFFF:c633:6407")).toBe("198.51.100.7");
    expect(addressKey("0:0:0:0:0:ffff:198.51.100.7")).toBe("198.51.100.7");
  });

  it("aggregates IPv6 to its /64, whatever the spelling", () => {
    const key = "2001:db8:1:2::/64";
    for (const ip of ["2001:db8:1:2::1", "2001:0DB8:0001:0002:ffff:ffff:ffff:ffff", "2001:db8:1:2:0:0:0:0", "2001:db8:1:2::10.0.0.1", "2001:db8:1:2::1%eth0"]) {
      expect(addressKey(ip)).toBe(key);
    }
    expect(addressKey("2001:db8:1:3::1")).toBe("2001:db8:1:3::/64");
    expect(addressKey("::1")).toBe("0:0:0:0::/64");
    expect(addressKey("2001:db8::")).toBe("2001:db8:0:0::/64");
    // Not the IPv4-mapped form: NAT64 and IPv4-compatible addresses stay IPv6.
    expect(addressKey("64:ff9b::198.51.100.7")).toBe("64:ff9b:0:0::/64");
  });

  it("anything else is one shared bucket", () => {
    expect(addressKey(undefined)).toBe("unknown");
    expect(addressKey("")).toBe("unknown");
    expect(addressKey("not-an-address")).toBe("unknown");
  });
});
