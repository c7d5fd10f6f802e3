package containers

import (
	"testing"

	"github.com/moby/moby/api/types/network"
)

// TestPublished: bridge mode's ports, as the Engine API takes them. (The
// emulated hosts' daemons have no bridge, so publishing is not run here.)
func TestPublished(t *testing.T) {
	set, bindings, err := published([]Port{{Host: 19092, Container: 9092, Protocol: "tcp"}, {Host: 5353, Container: 53, Protocol: "udp"}})
	if err != nil {
		t.Fatal(err)
	}
	kafka, dns := network.MustParsePort("9092/tcp"), network.MustParsePort("53/udp")
	if _, ok := set[kafka]; !ok || len(set) != 2 {
		t.Errorf("exposed %v", set)
	}
	if b := bindings[kafka]; len(b) != 1 || b[0].HostPort != "19092" {
		t.Errorf("9092/tcp bound to %+v", b)
	}
	if b := bindings[dns]; len(b) != 1 || b[0].HostPort != "5353" {
		t.Errorf("53/udp bound to %+v", b)
	}
	if set, bindings, err := published(nil); set != nil || bindings != nil || err != nil {
		t.Errorf("no ports: %v %v %v", set, bindings, err)
	}
}
