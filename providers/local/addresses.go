package local

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/e2c-dev/e2c/providers"
)

// Each scenario's hosts take their addresses from their own blocks of
// 127.0.0.0/8 (all loopback on Linux): block n is 127.(n/256).(n%256).0/24,
// its hosts .1 to .254. Blocks start at 127.1.0.0, clear of 127.0.0.1 and
// of the 127.0.1.1 Debian gives the machine's name.
const (
	firstBlock    = 256
	lastBlock     = 65535
	hostsPerBlock = 254
	maxHosts      = (lastBlock - firstBlock + 1) * hostsPerBlock
	registryName  = "local-addresses.json"
)

// address is the i-th host's address of the blocks starting at block.
func address(block, i int) string {
	n := block + i/hostsPerBlock
	return netip.AddrFrom4([4]byte{127, byte(n >> 8), byte(n), byte(1 + i%hostsPerBlock)}).String()
}

// blockName is block n as CIDR.
func blockName(n int) string { return fmt.Sprintf("127.%d.%d.0/24", n>>8&255, n&255) }

// slotOf is the number i of address addr among the hosts of the blocks
// starting at block, as address gives it.
func slotOf(block int, addr string) (int, bool) {
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is4() {
		return 0, false
	}
	b := a.As4()
	n := int(b[1])<<8 | int(b[2])
	if b[0] != 127 || n < block || b[3] < 1 || b[3] > hostsPerBlock {
		return 0, false
	}
	return (n-block)*hostsPerBlock + int(b[3]) - 1, true
}

// A claim is the blocks a scenario's hosts hold, recorded under the
// scenario's local state folder (its owner).
type claim struct {
	Owner string `json:"owner"`
	First int    `json:"first"`
	Count int    `json:"count"`
}

// live reports whether the claim's scenario still has its hosts: a
// scenario folder removed without e2c destroy frees its blocks.
func (c claim) live() bool {
	_, err := os.Stat(filepath.Join(c.Owner, "hosts"))
	return err == nil
}

// withClaims runs f on the claims of every scenario of this user,
// recorded machine-wide (~/.cache/e2c/local-addresses.json).
func withClaims(f func([]claim) ([]claim, error)) error {
	return providers.UpdateRecord("", registryName, "remove it once no local scenario keeps its hosts", f)
}

// claimBlocks records count free blocks for owner and returns the first.
// The search starts at a block derived from owner, so that a scenario
// keeps its addresses from one reservation to the next, and that the
// scenarios of two users (each with their own record) rarely meet. While
// the lock is held, the owner's hosts folder is created: from then on the
// claim is live.
func claimBlocks(owner string, count int) (int, error) {
	first := 0
	err := withClaims(func(claims []claim) ([]claim, error) {
		// A scenario has one local reservation: an older claim of the
		// same owner is what a crash left.
		claims = slices.DeleteFunc(claims, func(c claim) bool { return c.Owner == owner || !c.live() })
		taken := func(b int) bool {
			return slices.ContainsFunc(claims, func(c claim) bool { return b >= c.First && b < c.First+c.Count })
		}
		span := lastBlock - firstBlock + 1
		sum := sha256.Sum256([]byte(owner))
		start := int(binary.BigEndian.Uint32(sum[:4]) % uint32(span))
		for k := range span {
			b := firstBlock + (start+k)%span
			if b+count-1 > lastBlock {
				continue
			}
			free := true
			for j := b; j < b+count && free; j++ {
				free = !taken(j)
			}
			if free {
				first = b
				if err := os.MkdirAll(filepath.Join(owner, "hosts"), 0o755); err != nil {
					return nil, err
				}
				return append(claims, claim{Owner: owner, First: b, Count: count}), nil
			}
		}
		return nil, fmt.Errorf("no %d free blocks of loopback addresses: %d scenarios keep local hosts; e2c destroy those you are done with", count, len(claims))
	})
	return first, err
}

// growClaim makes the claim of owner, from block first, count blocks at
// least, taking the blocks that follow it.
func growClaim(owner string, first, count int) error {
	return withClaims(func(claims []claim) ([]claim, error) {
		i := slices.IndexFunc(claims, func(c claim) bool { return c.Owner == owner && c.First == first })
		if i < 0 {
			return nil, errors.New("local: the scenario's loopback addresses are no longer recorded as its own; e2c destroy, then deploy again")
		}
		for b := first + claims[i].Count; b < first+count; b++ {
			other := slices.ContainsFunc(claims, func(c claim) bool { return c.Owner != owner && c.live() && b >= c.First && b < c.First+c.Count })
			if b > lastBlock || other {
				return nil, fmt.Errorf("local: the hosts need %d blocks of loopback addresses from %s, and %s is not free; e2c destroy, then deploy again to get a free range",
					count, blockName(first), blockName(b))
			}
		}
		claims[i].Count = max(claims[i].Count, count)
		return claims, nil
	})
}

// unclaim frees the blocks of owner.
func unclaim(owner string) error {
	return withClaims(func(claims []claim) ([]claim, error) {
		return slices.DeleteFunc(claims, func(c claim) bool { return c.Owner == owner }), nil
	})
}

// claimed reports whether owner still holds the blocks starting at first.
func claimed(owner string, first int) (bool, error) {
	found := false
	err := withClaims(func(claims []claim) ([]claim, error) {
		found = slices.ContainsFunc(claims, func(c claim) bool { return c.Owner == owner && c.First == first })
		return claims, nil
	})
	return found, err
}
