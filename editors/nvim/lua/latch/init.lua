-- latch for nvim-dap: registers the `latch` debug adapter and attach configurations
-- for C, C++, Rust, Go and Zig.
--
--   require('latch').setup({ path = '/path/to/latch' })
--
-- The configurations may carry only the keys that latch's attach schema
-- (schemas/attach.schema.json) allows, plus DAP's `type`, `request` and `name`:
-- tests/nvim/test.lua checks that against the schema file.

local M = {}

M.languages = { 'c', 'cpp', 'rust', 'go', 'zig' }

local defaults = {
  -- The latch binary: a name looked up on PATH, or a full path.
  path = 'latch',
  -- The filetypes that get the attach configurations.
  languages = M.languages,
  -- Stay stopped after attaching, so the threads and their stacks can be looked at
  -- at once (latch has no breakpoints yet, so a running target shows little).
  stop_on_entry = true,
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

--- The adapter table for `dap.adapters.latch`.
function M.adapter(opts)
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

--- The attach configurations: one by pid (nvim-dap's process picker), one that
--- waits for a process by name.
function M.configurations(opts)
  opts = resolve(opts)
  return {
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
