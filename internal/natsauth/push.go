package natsauth

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
)

// claimsUpdateSubject is where NATS servers take account JWT updates from
// the system account (what `nsc push` uses).
const claimsUpdateSubject = "$SYS.REQ.CLAIMS.UPDATE"

// Push sends the authority's current account JWT (with its revocations) to
// the NATS servers at url, as the system account. Servers with a resolver
// dir keep it and share it with their cluster; connections of revoked
// credentials are closed at once.
func (a *Authority) Push(url string, opts ...nats.Option) error {
	sys, err := a.systemCreds()
	if err != nil {
		return err
	}
	id, err := parseAnyCreds(sys)
	if err != nil {
		return err
	}
	opts = append(opts, nats.UserJWTAndSeed(id.jwt, id.seed), nats.Name("atoll creds push"))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("push account to %s: %w", url, err)
	}
	defer nc.Close()
	msg, err := nc.Request(claimsUpdateSubject, []byte(a.AccountJWT), 5*time.Second)
	if err != nil {
		return fmt.Errorf("push account to %s: %w", url, err)
	}
	var reply struct {
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
		Data *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"data"`
	}
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return fmt.Errorf("push account to %s: bad reply %q", url, msg.Data)
	}
	if reply.Error != nil {
		return fmt.Errorf("push account to %s: %s (code %d)", url, reply.Error.Description, reply.Error.Code)
	}
	return nil
}

type rawCreds struct{ jwt, seed string }

// parseAnyCreds reads a creds file's JWT and seed without asking for an
// atoll role (the system user has none).
func parseAnyCreds(data []byte) (rawCreds, error) {
	token, err := jwt.ParseDecoratedJWT(data)
	if err != nil {
		return rawCreds{}, fmt.Errorf("creds: %w", err)
	}
	kp, err := jwt.ParseDecoratedUserNKey(data)
	if err != nil {
		return rawCreds{}, fmt.Errorf("creds: %w", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return rawCreds{}, fmt.Errorf("creds: %w", err)
	}
	return rawCreds{jwt: token, seed: string(seed)}, nil
}
