package g5k

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Version names this e2c in the User-Agent of its calls to the API; the
// command sets it to the version it prints.
var Version = "dev"

// client calls the Grid'5000 REST API.
type client struct {
	base       string // https://api.grid5000.fr/stable
	user, pass string // no Basic auth when user is ""
	http       *http.Client
	retryWait  time.Duration // first wait before retrying a GET or DELETE
}

// APIError is an answer of the API that is not a success. The API's error
// bodies are plain text; Hint says what the user can do about it.
type APIError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if body := strings.TrimSpace(e.Body); body != "" && !strings.HasPrefix(body, "<") {
		msg += ": " + body
	}
	if h := e.Hint(); h != "" {
		msg += " (" + h + ")"
	}
	return msg
}

// Hint says what to do about the error, when that is clear.
func (e *APIError) Hint() string {
	switch e.Status {
	case http.StatusUnauthorized:
		return "check username and password in ~/.python-grid5000.yaml"
	case http.StatusForbidden:
		return "the API did not identify you as the owner: outside Grid'5000, give username and password in ~/.python-grid5000.yaml"
	case http.StatusNotFound:
		return "it does not exist (any more) on that site"
	}
	if strings.Contains(e.Body, "could run at") {
		return "the reservation slot is taken: pick the date the API gives, or another cluster"
	}
	if strings.Contains(e.Body, "Reservation too old") {
		return "the reservation date is in the past (dates are Europe/Paris time)"
	}
	return ""
}

// newClient makes a client of the credentials' API; retryWait 0 is 1 s.
func newClient(c credentials, retryWait time.Duration) (*client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	switch {
	case c.CAFile != "":
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("verify_ssl: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("verify_ssl: %s holds no PEM certificate", c.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	case c.Insecure:
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // asked for explicitly: verify_ssl: false
	}
	return &client{base: strings.TrimRight(c.URI, "/"), user: c.Username, pass: c.Password,
		http: &http.Client{Transport: tr, Timeout: c.Timeout}, retryWait: cmp.Or(retryWait, time.Second)}, nil
}

// call sends a request and decodes a JSON answer into out (when not nil).
// GETs and DELETEs are retried on network errors and 5xx answers; POSTs are
// not: a lost answer may hide a created job.
func (c *client) call(ctx context.Context, method, path string, body, out any) (http.Header, error) {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	tries := 4
	if method == http.MethodPost {
		tries = 1
	}
	wait := c.retryWait
	var last error
	for try := 0; try < tries; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
			wait *= 2
		}
		h, err := c.once(ctx, method, path, data, out)
		var ae *APIError
		if err == nil || ctx.Err() != nil || errors.As(err, &ae) && ae.Status < 500 {
			return h, err
		}
		last = err
	}
	return nil, last
}

func (c *client) once(ctx context.Context, method, path string, data []byte, out any) (http.Header, error) {
	var rd io.Reader
	if data != nil {
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "e2c/"+Version)
	if data != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		text, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return resp.Header, &APIError{Method: method, Path: path, Status: resp.StatusCode, Body: string(text)}
	}
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return resp.Header, nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return resp.Header, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return resp.Header, nil
}

// collection is the API's list shape.
type collection[T any] struct {
	Total int `json:"total"`
	Items []T `json:"items"`
}

// job is an OAR job as the API shows it; absent keys stay zero.
type job struct {
	UID           int64               `json:"uid"`
	User          string              `json:"user"`
	Name          string              `json:"name,omitempty"`
	State         string              `json:"state"`
	Types         []string            `json:"types"`
	Walltime      int64               `json:"walltime"` // seconds
	SubmittedAt   int64               `json:"submitted_at"`
	ScheduledAt   int64               `json:"scheduled_at,omitempty"`
	StartedAt     int64               `json:"started_at"`
	AssignedNodes []string            `json:"assigned_nodes"`
	ByType        map[string][]string `json:"resources_by_type"`
	Events        []event             `json:"events"`
}

// event is an OAR event of a job: what happened to it, such as
// FRAG_JOB_REQUEST (deleted) or PROLOGUE_ERROR.
type event struct {
	Type        string `json:"type"`
	Description string `json:"description"`
}

// jobRequest is the body of a job submission.
type jobRequest struct {
	Name        string   `json:"name"`
	Resources   string   `json:"resources"`
	Command     string   `json:"command,omitempty"`
	Types       []string `json:"types,omitempty"`
	Queue       string   `json:"queue,omitempty"`
	Project     string   `json:"project,omitempty"`
	Reservation string   `json:"reservation,omitempty"`
}

// deployment is a kadeploy deployment.
type deployment struct {
	UID    string                `json:"uid"`
	Status string                `json:"status"`
	Result map[string]nodeResult `json:"result,omitempty"`
	Output string                `json:"output,omitempty"`
}

type nodeResult struct {
	State string `json:"state"` // OK or KO
	Macro string `json:"macro,omitempty"`
	Micro string `json:"micro,omitempty"`
	Error string `json:"error,omitempty"`
}

type deploymentRequest struct {
	Nodes       []string `json:"nodes"`
	Environment string   `json:"environment"`
	Key         string   `json:"key"`
}

type site struct {
	UID string `json:"uid"`
}

type cluster struct {
	UID    string `json:"uid"`
	Exotic bool   `json:"exotic,omitempty"`
}
