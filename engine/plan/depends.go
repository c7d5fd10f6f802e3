package plan

import (
	"fmt"
	"strings"

	"github.com/e2c-dev/e2c/schema"
)

// reserved are the variables e2c itself sets; a depends_on prefix or
// aggregate name may not hide one.
var reserved = map[string]bool{
	"working_dir": true, "scenario_dir": true, "artifacts_dir": true, "current_repeat": true,
	"repeat_count": true, "app_conf": true, "_self": true, "self_container": true, "item": true,
	"inventory_hostname": true,
}

// dependsVars computes, for each host of a play (in play order), the
// variables its depends_on entries give it. Values shared by every host
// (asarray lists, aggregate dictionaries) are built once and shared.
func (b *builder) dependsVars(p *Play, play *schema.Play, hosts []int) []map[string]any {
	vars := make([]map[string]any, len(hosts))
	for i := range vars {
		vars[i] = map[string]any{}
	}
	// owner says who set each variable, so that no two entries (nor a play
	// var) silently give one name.
	owner := map[string]string{}
	for k := range play.Vars {
		owner[k] = "the play's vars"
	}
	claim := func(d schema.DependsOn, name string) bool {
		if o, ok := owner[name]; ok {
			b.errs.At(d.At("prefix"), "depends_on %s: variable %s is also set by %s", d.Prefix, name, o)
			return false
		}
		owner[name] = "depends_on " + d.Prefix
		return true
	}
	for _, d := range play.DependsOn {
		var matched []*Service
		if d.ServiceSelector != "" {
			matched = b.selectServices(d.ServiceSelector, d.At("service_selector"), "depends_on.service_selector")
		}
		if reserved[d.Prefix] {
			b.errs.At(d.At("prefix"), "depends_on: prefix %q would hide the variable e2c sets under that name", d.Prefix)
			continue
		}
		if d.Prefix == "" || d.Grouping == "" || len(matched) == 0 {
			b.broken[d.Prefix] = true // reported already
			continue
		}
		dep := &Dependency{Prefix: d.Prefix, Grouping: d.Grouping, ArrayInfo: d.ArrayInfo, Selector: d.ServiceSelector}
		for _, s := range matched {
			dep.Services = append(dep.Services, s.Key)
		}
		p.DependsOn = append(p.DependsOn, dep)
		if d.Grouping != "aggregate" && !claim(d, d.Prefix) {
			continue
		}
		switch d.Grouping {
		case "round_robin":
			for i := range hosts {
				vars[i][d.Prefix] = matched[i%len(matched)].Info
			}
		case "asarray":
			list := b.asArray(d, matched)
			for i := range hosts {
				vars[i][d.Prefix] = list
			}
		case "aggregate":
			for k, v := range b.aggregate(d, matched) {
				if claim(d, k) {
					for i := range hosts {
						vars[i][k] = v
					}
				}
			}
		case "address_match":
			byAddr := map[any][]*Service{}
			for _, s := range matched {
				byAddr[s.Info["__address__"]] = append(byAddr[s.Info["__address__"]], s)
			}
			for i, h := range hosts {
				if info := b.addressMatch(d, b.inv.hosts[h], byAddr[b.inv.hosts[h].Address]); info != nil {
					vars[i][d.Prefix] = info
				}
			}
		}
	}
	return vars
}

// asArray builds the list asarray gives every host. Two services giving the
// same value would make the list ambiguous (E2Clab's ids drop the
// underscores, so 1_2_11 and 1_21_1 both read 1211, and sub-services on one
// machine share an id): e2c refuses that instead of letting one hide the
// other.
func (b *builder) asArray(dep schema.DependsOn, matched []*Service) []any {
	list := make([]any, 0, len(matched))
	from := map[string]string{}
	for _, s := range matched {
		var v string
		switch dep.ArrayInfo {
		case "hostname":
			v, _ = s.Info["__address__"].(string)
		case "g5k_ipv6_hostname":
			v, _ = s.Info["g5k_ipv6_hostname"].(string)
			if v == "" {
				b.errs.At(dep.At("array_info"), "depends_on: array_info g5k_ipv6_hostname: %s has no IPv6 host name (only Grid'5000 hosts have one)", s.Key)
				return nil
			}
		default:
			v = strings.ReplaceAll(s.Info["_id"].(string), "_", "")
		}
		if other, dup := from[v]; dup {
			b.errs.At(dep.At("service_selector"), "depends_on %s: asarray %s value %q is given by both %s and %s; narrow service_selector or use array_info: hostname",
				dep.Prefix, dep.ArrayInfo, v, other, s.Key)
			return nil
		}
		from[v] = s.Key
		list = append(list, v)
	}
	return list
}

// aggregate builds the variables <prefix><service>_<machine> of every
// matched service. The layer index is not part of the name (as in E2Clab),
// so services of two layers, or two sub-services of one machine, can give the
// same name: e2c refuses that instead of keeping one silently.
func (b *builder) aggregate(dep schema.DependsOn, matched []*Service) map[string]any {
	out := map[string]any{}
	from := map[string]string{}
	for _, s := range matched {
		name := fmt.Sprintf("%s%s_%s", dep.Prefix, s.Info["service_id"], s.Info["machine_id"])
		if other, dup := from[name]; dup {
			b.errs.At(dep.At("service_selector"), "depends_on %s: aggregate variable %s is given by both %s and %s; narrow service_selector so that each name is one service",
				dep.Prefix, name, other, s.Key)
			return nil
		}
		from[name] = s.Key
		out[name] = s.Info
	}
	return out
}

// addressMatch returns the one matched service at host h's address. A host
// running several matched services would be ambiguous: e2c refuses it.
func (b *builder) addressMatch(dep schema.DependsOn, h *Host, atAddress []*Service) map[string]any {
	switch len(atAddress) {
	case 0:
		return nil
	case 1:
		return atAddress[0].Info
	}
	b.errs.At(dep.At("service_selector"), "depends_on %s: address_match: host %s runs both %s and %s; narrow service_selector to one of them",
		dep.Prefix, h.Name, atAddress[0].Key, atAddress[1].Key)
	return nil
}
