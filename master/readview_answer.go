package master

import (
	"bufio"
	"net/http"
)

// How answers served from the read view are written.

// jsonAnswer writes an answer made of pieces of encoded JSON straight to
// the client rather than joining them first: at 100,000 tasks an answer
// is tens of megabytes, and a buffer that size per GET would cost the
// garbage collector more than the copying. The pieces are encoded as
// writeJSON would encode the whole.
type jsonAnswer struct{ *bufio.Writer }

// startJSON starts an answer of about size bytes: its buffer is no larger
// than it needs, up to 64 KiB.
func startJSON(w http.ResponseWriter, status, size int) jsonAnswer {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return jsonAnswer{bufio.NewWriterSize(w, min(max(size, 512), 64<<10))}
}

// app writes an app's view, with its tasks embedded or without; the
// entry must be encoded (appEntry.encode).
func (a jsonAnswer) app(e *appEntry, withTasks bool, extras []byte) {
	if !withTasks && len(extras) == 0 {
		a.Write(e.json)
		return
	}
	// The view's closing brace makes way for its tasks (appView's last
	// field) and the other embeds (appEntry.extras).
	a.Write(e.json[:len(e.json)-1])
	if withTasks {
		a.WriteString(`,"tasks":[`)
		a.Write(e.tasks.json)
		a.WriteByte(']')
	}
	a.Write(extras)
	a.WriteByte('}')
}

// end ends the answer with writeJSON's newline and sends what is left. A
// client that went away is not an error to report.
func (a jsonAnswer) end() {
	a.WriteByte('\n')
	_ = a.Flush()
}
