// Package natsauth gives every part of an atoll cluster its own NATS
// identity and lets the NATS server enforce what each may say and hear
// (DESIGN.md §10). It uses NATS's own decentralised authentication: an
// operator key signs the cluster's account, the account key signs one user
// JWT per role and node, and the server checks every connection's JWT and
// nkey signature and holds it to the JWT's subject permissions. atoll adds
// no signature scheme of its own.
//
// The files an operator keeps (Authority, in one folder, secrets 0600):
//
//	operator.nk operator.jwt   the trust root; NATS servers need only the .jwt
//	account.nk  account.jwt    the cluster's account: signs every credential
//	system.nk   system.jwt     NATS's system account (revocations are pushed there)
//	system.creds               a system-account user, to push account updates
//	issued.json                the credentials issued, by role and name
//
// A NATS server needs only the three .jwt files (ServerTrust).
package natsauth
