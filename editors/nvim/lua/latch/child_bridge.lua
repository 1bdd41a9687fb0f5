-- NOT a module: a script Neovim runs to carry a latch child session between nvim-dap and
-- the unix socket latch named in `latchChildSession`:
--
--   nvim --headless --clean -l child_bridge.lua SOCKET
--
-- It copies its stdin to the socket and the socket to its stdout, and ends when the
-- socket closes. Why it exists: nvim-dap's `startDebugging` handler starts a child
-- session only from an `executable` or `server` adapter (lua/dap/session.lua,
-- start_debugging), not from a `pipe` one, so latch's child sessions get an
-- `executable` adapter: this script, run by the Neovim that is already there.

local path = arg and arg[1]
if not path or path == '' then
  io.stderr:write('usage: nvim --headless --clean -l child_bridge.lua SOCKET\n')
  os.exit(2)
end

local uv = vim.uv or vim.loop
local sock = assert(uv.new_pipe(false))
local stdin = assert(uv.new_pipe(false))
local stdout = assert(uv.new_pipe(false))
assert(stdin:open(0))
assert(stdout:open(1))

local done, code = false, 0
local function finish(c)
  if not done then
    done, code = true, c
  end
end

sock:connect(path, function(err)
  if err then
    io.stderr:write(('latch: cannot connect to the child session socket %s: %s\n'):format(path, err))
    return finish(1)
  end
  sock:read_start(function(read_err, data)
    if data then
      stdout:write(data)
    else
      if read_err then
        io.stderr:write(('latch: child session socket %s: %s\n'):format(path, read_err))
      end
      finish(read_err and 1 or 0)
    end
  end)
  -- The client (nvim-dap) ends the session by closing our stdin: pass that on as the
  -- end of what latch reads, and keep copying latch's answers until it closes.
  stdin:read_start(function(_, data)
    if data then
      sock:write(data)
    else
      stdin:read_stop()
      sock:shutdown()
    end
  end)
end)

vim.wait(0x7fffffff, function()
  return done
end, 50)
local flushed = false
stdout:shutdown(function()
  flushed = true
end)
vim.wait(5000, function()
  return flushed
end, 10)
os.exit(code)
