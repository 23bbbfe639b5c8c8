package client

import (
	"errors"
	"net/http"
	"net/url"
)

// FollowLeader is a CheckRedirect for http.Client that sends the first
// request's credentials on to the leader a standby redirects to (atoll
// standbys answer /v2/events with 302 and /master/* with 307, naming the
// leader in X-Marathon-Leader). Go drops Authorization on a redirect to
// another host; here it is kept only for the very host and scheme the
// master named as its leader, and never from https down to http.
func FollowLeader(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.Response == nil || req.Header.Get("Authorization") != "" {
		return nil
	}
	leader, err := url.Parse(req.Response.Header.Get("X-Marathon-Leader"))
	if err != nil || leader.Host == "" || leader.Host != req.URL.Host || leader.Scheme != req.URL.Scheme {
		return nil
	}
	first := via[0]
	if first.URL.Scheme == "https" && req.URL.Scheme != "https" {
		return nil
	}
	if auth := first.Header.Get("Authorization"); auth != "" {
		req.Header.Set("Authorization", auth)
	} else if u := first.URL.User; u != nil {
		pass, _ := u.Password()
		req.SetBasicAuth(u.Username(), pass)
	}
	return nil
}
