// pm2 start examples/pm2/ecosystem.config.cjs
// pm2 reload quiesce-example        zero-downtime: one instance at a time
module.exports = {
  apps: [
    {
      name: 'quiesce-example',
      script: './app.cjs',
      cwd: __dirname,
      // cluster mode: PM2 is the node:cluster primary; `reload` starts the new instance, waits for it,
      // then sends SIGINT to the old one (fork mode reloads are plain restarts, with downtime)
      exec_mode: 'cluster',
      instances: 2,
      // PM2 SIGKILLs an instance kill_timeout ms after SIGINT (default 1600). quiesce reads it (D19):
      // keep timeout + hooksTimeout (+ ~100 ms to flush logs) below it, or it warns at start-up and
      // scales its own deadline down to fit.
      kill_timeout: 10_000,
      // opt-in: the old instance goes only once the new one called notifyReady() (app.cjs);
      // without it PM2 waits for `listening`, which is fine for most apps
      wait_ready: true,
      listen_timeout: 10_000,
      // optional: PM2 sends the message 'shutdown' instead of SIGINT on stop/delete (not on reload);
      // quiesce treats it as a signal
      // shutdown_with_message: true,
      env: { PORT: '3000' },
    },
  ],
}
