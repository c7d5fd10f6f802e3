package g5kfake

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Media types of the API's links.
const (
	itemType       = "application/vnd.grid5000.item+json"
	collectionType = "application/vnd.grid5000.collection+json"
)

// Link is an entry of the links array every item and collection carries.
type Link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
	Type string `json:"type"`
}

// collection is the API's list shape. Reference collections also carry the
// reference repository's version; job and deployment lists do not.
type collection struct {
	Total   int    `json:"total"`
	Offset  int    `json:"offset"`
	Items   any    `json:"items"`
	Links   []Link `json:"links"`
	Version string `json:"version,omitempty"`
}

// reply is a response computed under the lock, written after it.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (rep *reply) set(key, value string) *reply {
	rep.header.Set(key, value)
	return rep
}

func (rep *reply) write(w http.ResponseWriter) {
	for k, v := range rep.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rep.status)
	w.Write(rep.body)
}

func jsonReply(status int, v any) *reply {
	data, err := json.Marshal(v)
	if err != nil {
		return textReply(http.StatusInternalServerError, err.Error())
	}
	rep := &reply{status: status, header: http.Header{}, body: data}
	return rep.set("Content-Type", "application/json; charset=utf-8")
}

// textReply is the API's error shape: a plain-text body.
func textReply(status int, text string) *reply {
	rep := &reply{status: status, header: http.Header{}, body: []byte(text)}
	return rep.set("Content-Type", "text/plain; charset=utf-8")
}

// unauthorized is the front proxy's answer to missing or wrong credentials:
// HTML, not the application's plain text.
func unauthorized() *reply {
	rep := &reply{status: http.StatusUnauthorized, header: http.Header{}, body: []byte(
		"<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>401 Unauthorized</title>\n" +
			"</head><body>\n<h1>Unauthorized</h1>\n<p>This server could not verify that you are authorized " +
			"to access the document requested.</p>\n</body></html>\n")}
	rep.set("WWW-Authenticate", `Basic realm="Grid'5000 API"`)
	return rep.set("Content-Type", "text/html; charset=iso-8859-1")
}

const forbiddenText = "You are not authorized to access this resource"

func forbidden() *reply { return textReply(http.StatusForbidden, forbiddenText) }

// page applies offset and limit the way the jobs and deployments lists do:
// default 50 items, at most 500.
func page[T any](items []T, r *http.Request) ([]T, int) {
	q := r.URL.Query()
	offset, _ := strconv.Atoi(q.Get("offset"))
	offset = max(offset, 0)
	limit := 50
	if q.Has("limit") {
		limit, _ = strconv.Atoi(q.Get("limit"))
	}
	limit = max(min(limit, 500), 0)
	if offset > len(items) {
		offset = len(items)
	}
	end := min(offset+limit, len(items))
	return append([]T{}, items[offset:end]...), offset // never null in JSON
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
