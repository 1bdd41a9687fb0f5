-- NOT nvim-dap. A minimal stand-in with nvim-dap's shape (the `adapters` and
-- `configurations` tables and `ABORT`), for tests/nvim/test.lua: nvim-dap is on no
-- package registry this project's CI can reach. The test records what
-- editors/nvim registers here and checks it against latch's attach schema.
return {
  adapters = {},
  configurations = {},
  -- nvim-dap's sentinel: a configuration function returning it cancels the session.
  ABORT = {},
}
