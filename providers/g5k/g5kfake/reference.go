package g5kfake

import (
	"net/http"
	"slices"
	"strings"
)

// refVersion stands for the reference repository's commit.
const refVersion = "5b2d9e61c0a4f3e8d7c6b5a4938271605f4e3d2c"

// refCache is how the API lets reference documents be cached.
const refCache = "max-age=60, public, must-revalidate, proxy-revalidate, s-maxage=60"

type doc = map[string]any

func (s *Server) getSites(r *http.Request) *reply {
	items := []doc{}
	for _, site := range s.sites {
		items = append(items, s.siteDoc(site))
	}
	return s.refCollection("/sites", "", items)
}

func (s *Server) getSite(r *http.Request) *reply {
	site := r.PathValue("site")
	if !s.siteOK(site) {
		return notFoundRef(r)
	}
	return s.refItem(s.siteDoc(site))
}

func (s *Server) getClusters(r *http.Request) *reply {
	site := r.PathValue("site")
	if !s.siteOK(site) {
		return notFoundRef(r)
	}
	items := []doc{}
	for _, c := range s.clusters[site] {
		items = append(items, s.clusterDoc(c))
	}
	return s.refCollection("/sites/"+site+"/clusters", "/sites/"+site, items)
}

func (s *Server) getCluster(r *http.Request) *reply {
	c := s.cluster(r.PathValue("site"), r.PathValue("cluster"))
	if c == nil {
		return notFoundRef(r)
	}
	return s.refItem(s.clusterDoc(c))
}

func (s *Server) getNodes(r *http.Request) *reply {
	c := s.cluster(r.PathValue("site"), r.PathValue("cluster"))
	if c == nil {
		return notFoundRef(r)
	}
	items := []doc{}
	for _, uid := range c.Nodes {
		items = append(items, s.nodeDoc(c, uid))
	}
	p := clusterPath(c)
	return s.refCollection(p+"/nodes", p, items)
}

func (s *Server) getNode(r *http.Request) *reply {
	c := s.cluster(r.PathValue("site"), r.PathValue("cluster"))
	uid := r.PathValue("node")
	if c == nil || !slices.Contains(c.Nodes, uid) {
		return notFoundRef(r)
	}
	return s.refItem(s.nodeDoc(c, uid))
}

// notFoundRef is the reference API's 404; its path has no version prefix.
func notFoundRef(r *http.Request) *reply {
	p := r.URL.Path
	if i := strings.Index(p, "/sites"); i >= 0 {
		p = p[i:]
	}
	return textReply(http.StatusNotFound, "Cannot find resource "+p)
}

func (s *Server) refItem(d doc) *reply {
	return jsonReply(http.StatusOK, d).set("Cache-Control", refCache)
}

func (s *Server) refCollection(p, parent string, items []doc) *reply {
	links := []Link{{Rel: "self", Href: s.path(p), Type: collectionType}}
	if parent != "" {
		links = append(links, Link{Rel: "parent", Href: s.path(parent), Type: itemType})
	}
	c := collection{Total: len(items), Items: items, Links: links, Version: refVersion}
	return jsonReply(http.StatusOK, c).set("Cache-Control", refCache)
}

// refLinks are a reference item's links: its sub-collections, then self,
// parent, version and versions.
func (s *Server) refLinks(p, parent string, subs ...string) []Link {
	var links []Link
	for _, sub := range subs {
		links = append(links, Link{Rel: sub, Href: s.path(p + "/" + sub), Type: collectionType})
	}
	return append(links,
		Link{Rel: "self", Href: s.path(p), Type: itemType},
		Link{Rel: "parent", Href: s.path(parent), Type: itemType},
		Link{Rel: "version", Href: s.path(p + "/versions/" + refVersion), Type: itemType},
		Link{Rel: "versions", Href: s.path(p + "/versions"), Type: collectionType})
}

func (s *Server) siteDoc(site string) doc {
	name := strings.ToUpper(site[:1]) + site[1:]
	return doc{
		"uid":         site,
		"type":        "site",
		"name":        name,
		"description": "Grid'5000 " + name + " site",
		"version":     refVersion,
		"links":       s.refLinks("/sites/"+site, "", "clusters", "deployments", "jobs"),
	}
}

func (s *Server) clusterDoc(c *Cluster) doc {
	return doc{
		"uid":     c.Name,
		"type":    "cluster",
		"exotic":  c.Exotic,
		"queues":  []string{"admin", "default"},
		"kavlan":  true,
		"version": refVersion,
		"links":   s.refLinks(clusterPath(c), "/sites/"+c.Site, "nodes"),
	}
}

func (s *Server) nodeDoc(c *Cluster, uid string) doc {
	p := clusterPath(c)
	return doc{
		"uid":  uid,
		"type": "node",
		"architecture": doc{
			"platform_type": "x86_64",
			"nb_procs":      2,
			"nb_cores":      16,
			"nb_threads":    32,
		},
		"main_memory": doc{"ram_size": 128 << 30},
		"network_adapters": []doc{{
			"device":          "eth0",
			"interface":       "Ethernet",
			"enabled":         true,
			"mounted":         true,
			"network_address": fqdn(uid, c.Site),
			"rate":            10_000_000_000,
		}},
		"version": refVersion,
		"links":   s.refLinks(p+"/nodes/"+uid, p+"/nodes"),
	}
}

func clusterPath(c *Cluster) string { return "/sites/" + c.Site + "/clusters/" + c.Name }

// cluster finds a cluster of a site, nil if there is none.
func (s *Server) cluster(site, name string) *Cluster {
	for _, c := range s.clusters[site] {
		if c.Name == name {
			return c
		}
	}
	return nil
}
