-- latch for nvim-dap: registers the `latch` debug adapter and launch and attach
-- configurations for C, C++, Rust, Go and Zig.
--
--   require('latch').setup({ path = '/path/to/latch' })
--
-- The configurations may carry only the keys that latch's schema for their request
-- (schemas/launch.schema.json, schemas/attach.schema.json) allows, plus DAP's `type`,
-- `request` and `name`: tests/nvim/test.lua checks that against the schema files.

local M = {}

M.languages = { 'c', 'cpp', 'rust', 'go', 'zig' }

local defaults = {
  -- The latch binary: a name looked up on PATH, or a full path.
  path = 'latch',
  -- The filetypes that get the attach configurations.
  languages = M.languages,
  -- Stay stopped after attaching, so the threads and their stacks can be looked at
  -- at once.
  stop_on_entry = true,
  -- Launch: stop at the first line of `main` (else run to the first breakpoint).
  stop_at_main = false,
  -- 'stdio': nvim-dap runs `latch dap` and talks over its stdin/stdout.
  -- 'tcp': nvim-dap runs `latch dap --listen 127.0.0.1:PORT` on a free port and
  -- connects to it (a `server` adapter; needs a latch with `--listen`).
  transport = 'stdio',
  -- Extra arguments for `latch dap`, e.g. { '--log-file', '/tmp/latch.log' }.
  args = {},
}

local function notify_error(msg)
  vim.notify(msg, vim.log.levels.ERROR, { title = 'latch' })
end

-- The values given to setup(), over the defaults.
local function resolve(opts)
  opts = vim.tbl_extend('force', defaults, opts or {})
  if opts.transport ~= 'stdio' and opts.transport ~= 'tcp' then
    error(("latch: transport must be 'stdio' or 'tcp', not %s"):format(vim.inspect(opts.transport)))
  end
  return opts
end

--- The adapter table that starts latch: `latch dap` over stdio, or for transport
--- 'tcp' a `server` adapter that starts `latch dap --listen`.
function M.main_adapter(opts)
  opts = resolve(opts)
  local args = vim.list_extend({ 'dap' }, opts.args)
  if opts.transport == 'stdio' then
    return { type = 'executable', command = opts.path, args = args }
  end
  -- nvim-dap picks a free port for '${port}', starts the executable with it and
  -- then connects.
  vim.list_extend(args, { '--listen', '127.0.0.1:${port}' })
  return {
    type = 'server',
    host = '127.0.0.1',
    port = '${port}',
    executable = { command = opts.path, args = args },
  }
end

--- The adapter table for a child session latch offers through `startDebugging` (a
--- process the debuggee forked, with `followForks`): the latch that holds the child
--- already serves it on the unix socket `socket`, so no new latch is started.
---
--- nvim-dap's startDebugging handler accepts only `executable` and `server` adapters
--- (not `pipe`), so this is an executable: `latch dap --connect SOCKET`, which copies
--- DAP between its stdio and the socket (it starts no debugger of its own).
function M.child_adapter(socket, opts)
  opts = resolve(opts)
  return {
    type = 'executable',
    command = opts.path,
    args = { 'dap', '--connect', socket },
  }
end

--- `dap.adapters.latch`: a function adapter, which nvim-dap calls with each session's
--- configuration (for a child session too, with the configuration latch sent):
--- `latchChildSession` in it gets `child_adapter`, everything else `main_adapter`.
function M.adapter(opts)
  local main = M.main_adapter(opts)
  return function(callback, config)
    local socket = config and config.latchChildSession
    if socket == nil then
      return callback(vim.deepcopy(main))
    end
    local stat = type(socket) == 'string' and vim.uv.fs_stat(socket)
    if not stat or stat.type ~= 'socket' then
      notify_error(('latch: the child session socket %s is %s'):format(
        vim.inspect(socket), stat and 'not a unix socket' or 'gone (the latch that offered it has ended)'))
      return
    end
    callback(M.child_adapter(socket, opts))
  end
end

--- The configurations: one that launches a program (asked for), one that attaches by
--- pid (nvim-dap's process picker), one that waits for a process by name.
function M.configurations(opts)
  opts = resolve(opts)
  return {
    {
      type = 'latch',
      request = 'launch',
      name = 'latch: launch a program',
      program = function()
        local path = vim.trim(vim.fn.input('latch: program to launch: ', vim.fn.getcwd() .. '/', 'file'))
        -- Escape or an empty answer cancels the session.
        if path == '' then
          return require('dap').ABORT
        end
        return path
      end,
      args = {},
      -- Evaluated when the session starts: the current directory then, not at setup().
      cwd = function()
        return vim.fn.getcwd()
      end,
      stopAtMain = opts.stop_at_main,
    },
    {
      type = 'latch',
      request = 'attach',
      name = 'latch: attach to process',
      -- nvim-dap evaluates function-valued fields inside a coroutine when the
      -- session starts, which pick_process needs; it returns the chosen pid or
      -- dap.ABORT. Required lazily so that setup() works before dap is loaded.
      pid = function()
        return require('dap.utils').pick_process()
      end,
      stopOnEntry = opts.stop_on_entry,
    },
    {
      type = 'latch',
      request = 'attach',
      name = 'latch: wait for a process by name',
      waitFor = function()
        local name = vim.trim(vim.fn.input('latch: wait for a process named: '))
        -- Escape or an empty answer: cancel the session instead of sending an
        -- attach that latch would reject.
        if name == '' then
          return require('dap').ABORT
        end
        return name
      end,
      stopOnEntry = opts.stop_on_entry,
    },
  }
end

--- Registers the adapter and adds the configurations to each language's list
--- (kept, not replaced: a second setup() replaces latch's own entries only).
function M.setup(opts)
  opts = resolve(opts)
  local ok, dap = pcall(require, 'dap')
  if not ok then
    notify_error('latch: nvim-dap is not installed (require("dap") failed); install mfussenegger/nvim-dap first')
    return
  end
  if vim.fn.executable(opts.path) ~= 1 then
    -- Still register everything: the user may install latch later in this
    -- session, and nvim-dap would then start it.
    notify_error(
      ('latch: %q is not an executable (or not on PATH). Install latch with '
        .. '`cargo install --path adapter` in a latch checkout, or give its full path: '
        .. "require('latch').setup({ path = '/path/to/latch' })"):format(opts.path)
    )
  end
  dap.adapters.latch = M.adapter(opts)
  for _, lang in ipairs(opts.languages) do
    local list = dap.configurations[lang] or {}
    for _, config in ipairs(M.configurations(opts)) do
      local replaced = false
      for i, existing in ipairs(list) do
        if existing.type == 'latch' and existing.name == config.name then
          list[i] = config
          replaced = true
        end
      end
      if not replaced then
        table.insert(list, config)
      end
    end
    dap.configurations[lang] = list
  end
end

return M
