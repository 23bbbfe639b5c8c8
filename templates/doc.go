// Package templates holds atoll's HAProxy templates, named as marathon-lb's
// (HAPROXY_HEAD, HAPROXY_BACKEND_HEAD, ...). The defaults are embedded from
// default/; Load replaces any of them with a file of the same name from a
// directory, and ParseOverrides/ExecuteWith replace one for a single app port (the
// HAPROXY_{n}_<NAME> label). Templates are Go text/template; the data each
// one receives is documented on Global, Service and Vhost in data.go.
package templates
