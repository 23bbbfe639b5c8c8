// Package lbsync keeps one HAProxy per node in line with the cluster state.
// This part is the pure core, in the style of raft's Ready/Advance: it does
// no I/O. The caller (the applier, built separately) drives it:
//
//  1. Load the templates (templates.Load) and build a Config.
//  2. On each coalesced batch of events, call RenderNext(prev, state, cfg,
//     set) with the Result it last applied (nil at start). The Result holds
//     the haproxy.cfg text, the two map files, the server slots of every
//     backend and the apps that were left out (Result.Errors).
//  3. Call Diff(prev, next). When Plan.Reload is false, send Plan.Commands
//     to the runtime API (they may be joined with ";"), then write the
//     config and map files so that a later reload keeps them (the applier
//     does this in the background). Every file is checked with
//     CheckWithHAProxy before an atomic rename puts it live; when
//     Plan.Reload is true, that happens before the master reloads. Template
//     text that an app's labels or a new template set bring in is also
//     parsed with Validate (config-parser) when it first appears.
//  4. Keep next as prev only once it has been applied: slots are stable
//     across renders because RenderNext reads them from prev.
//  5. HAProxyApplier (applier.go) does steps 3–4 on a real HAProxy it runs (Process, Runtime, WriteConfig).
//  6. When `haproxy -c` rejects a candidate (a *CheckError), ParseAlerts
//     reads its ALERT lines and Result.Blame maps them, by config line and
//     proxy name, to the app ports whose text they point at;
//     Result.Without assembles the config again without them. The Syncer
//     (syncer.go) does this in a loop and keeps the blamed ports out of
//     later renders (a Quarantine) until their app's definition changes;
//     alerts no app can be blamed for keep the old config serving.
//  7. Drift compares "show servers state" with the last applied Result;
//     HAProxyApplier.Reconcile repairs it (runtime commands, a reload, or
//     a new master), every Syncer.ReconcileInterval.
//
// Problems (apps left out, template sets refused, configs rejected) are
// logged, counted in Metrics and handed to a Reporter once each, not on
// every render. TemplateWatcher re-reads a templates folder when it
// changes; Syncer.SetTemplates tries a new set before taking it.
package lbsync
