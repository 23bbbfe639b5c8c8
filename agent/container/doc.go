// Package container runs a task from an image with an OCI runtime (runc):
// spec.go turns the image's config and the app's fields into an OCI
// runtime spec (pure), parameters.go maps Marathon's docker parameters,
// user.go reads the image's users, runtime.go drives runc, driver.go puts
// the image store (agent/imagestore), the bridge (agent/cninet) and runc
// together in the right order.
//
// The agent wires it into its launch, kill and adoption paths in
// agent/containers.go; in outline:
//
//	images, _ := imagestore.Open(imagestore.Options{Root: dataDir + "/images",
//		CredentialsFile: flagRegistryCredentials, InsecureRegistries: flagInsecureRegistries})
//	go images.RunGC(ctx, time.Minute, gcDelay, logResult)
//	rt, err := container.NewRuntime("runc", dataDir+"/runc") // err: "container runtime ... not found"
//	bridge, _ := cninet.New(cninet.Options{Subnet: flagBridgeSubnet, StateDir: dataDir + "/cni"})
//	d := &container.Driver{Images: images, Runtime: rt, Bridge: bridge, Dir: dataDir + "/containers"}
//
//	run, err := d.Start(ctx, container.Launch{Task: container.Task{ID: taskID, Cmd: app.Cmd,
//		Args: app.Args, Env: env, User: app.User, Sandbox: sandbox, Volumes: vols, CPUs: app.CPUs,
//		MemMB: app.Mem, PidsMax: n, CgroupsPath: "atoll/" + taskID}, Image: app.Container.Docker.Image,
//		ForcePull: ..., Bridged: ..., Ports: ..., Parameters: ..., Stdout: sandbox + "/stdout", Stderr: ...})
//	// run.Pid is the agent's child (runc run): it exits with the container's status
//	// (128+signal when killed; 137 for an OOM kill). Reap it as a host task's process.
//	d.Stop(ctx, taskID, grace)          // kill: SIGTERM, SIGKILL after grace
//	end, err := d.Cleanup(ctx, taskID)  // after exit: end.OOMKilled -> "Memory limit exceeded"
//	code, ok := d.ExitCode(taskID)      // how an adopted container ended
//	d.PurgeFinished(gcDelay)            // periodically: finished tasks' folders (their writes, logs)
//	st, ip, err := d.Adopt(ctx, taskID) // after an agent restart: st.Pid to watch, st.Status
//
// Who may use what: the runtime's --root state folder, the bundles and the
// task folders are the agent's (root, 0700); a task sees only its root
// filesystem, its sandbox (at /mnt/mesos/sandbox, as Mesos mounts it) and
// the volumes its app names.
package container
