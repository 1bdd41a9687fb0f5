-- editors/nvim in a real Neovim, against latch's launch and attach schemas.
--
--   LATCH_REPO=. LATCH_BIN=target/debug/latch nvim --headless -u NONE -l tests/nvim/test.lua
--
-- `dap` and `dap.utils` come from tests/nvim/stub: a stand-in with nvim-dap's shape,
-- NOT nvim-dap (which no package registry our CI reaches ships). What is real: Neovim,
-- editors/nvim/lua/latch, the schema file (read now, never copied), and the latch binary.
-- Prints one line per check and "N passed, N failed" last; exits non-zero on failure.

local repo = assert(os.getenv('LATCH_REPO'), 'set LATCH_REPO to the checkout')
local latch_bin = assert(os.getenv('LATCH_BIN'), 'set LATCH_BIN to the latch binary')

vim.opt.runtimepath:prepend(repo .. '/tests/nvim/stub')
vim.opt.runtimepath:prepend(repo .. '/editors/nvim')

local passed, failed = 0, 0
local function check(name, fn)
  local ok, err = pcall(fn)
  if ok then
    passed = passed + 1
    print('ok   ' .. name)
  else
    failed = failed + 1
    print('FAIL ' .. name .. ': ' .. tostring(err))
  end
end

local function eq(actual, expected, what)
  if not vim.deep_equal(actual, expected) then
    error(('%s: expected %s, got %s'):format(what, vim.inspect(expected), vim.inspect(actual)), 2)
  end
end

-- Every vim.notify call, instead of printing it.
local notes = {}
vim.notify = function(msg, level)
  table.insert(notes, { msg = msg, level = level })
end

-- Each request's schema, and the keys a configuration of that request may carry.
local schemas, allowed = {}, {}
for _, request in ipairs({ 'attach', 'launch' }) do
  schemas[request] = vim.json.decode(table.concat(vim.fn.readfile(repo .. '/schemas/' .. request .. '.schema.json'), '\n'))
  allowed[request] = { type = true, request = true, name = true }
  for key in pairs(schemas[request].properties) do
    allowed[request][key] = true
  end
end
local schema = schemas.attach

-- Whether a Lua value fits a schema property (the subset of JSON Schema the
-- generated files use: type, or anyOf of types / a $ref to an enum, array items).
-- `from` is the schema whose $defs a $ref names (the attach schema by default).
local function fits(value, prop, from)
  from = from or schema
  if prop.anyOf then
    for _, alt in ipairs(prop.anyOf) do
      if fits(value, alt, from) then
        return true
      end
    end
    return false
  end
  if prop['$ref'] then
    local def = from['$defs'][prop['$ref']:match('^#/%$defs/(.+)$')]
    return fits(value, def, from)
  end
  if prop.enum and not vim.tbl_contains(prop.enum, value) then
    return false
  end
  local types = type(prop.type) == 'table' and prop.type or { prop.type }
  local lua_type = type(value)
  for _, t in ipairs(types) do
    if
      (t == 'string' and lua_type == 'string')
      or (t == 'boolean' and lua_type == 'boolean')
      or ((t == 'integer' or t == 'number') and lua_type == 'number')
    then
      return true
    end
    -- An empty Lua table is an empty array (vim.json encodes it as []).
    if t == 'array' and lua_type == 'table' and vim.islist(value) then
      for _, item in ipairs(value) do
        if not fits(item, prop.items, from) then
          return false
        end
      end
      return true
    end
  end
  return false
end

local dap = require('dap')
local utils = require('dap.utils')

check('the module loads and setup() runs without error or message', function()
  require('latch').setup({ path = latch_bin })
  eq(notes, {}, 'notifications')
end)

-- What nvim-dap does with a function adapter: calls it with the session's configuration
-- (and the parent session, for startDebugging) and runs the table it is called back
-- with. Returns that table (nil if it never called back).
local function resolve_adapter(config)
  local adapter = dap.adapters.latch
  assert(type(adapter) == 'function', 'dap.adapters.latch is not a function adapter: ' .. vim.inspect(adapter))
  local resolved
  adapter(function(a)
    resolved = a
  end, config or { type = 'latch', request = 'launch', name = 'x', program = '/bin/true' })
  return resolved
end

check('dap.adapters.latch runs `<path> dap` over stdio', function()
  eq(resolve_adapter(), { type = 'executable', command = latch_bin, args = { 'dap' } }, 'adapter')
end)

check("the adapter's command is executable", function()
  local command = resolve_adapter().command
  eq(vim.fn.executable(command), 1, 'executable(' .. command .. ')')
end)

local languages = { 'c', 'cpp', 'rust', 'go', 'zig' }

check('c, cpp, rust, go and zig each get a launch, a pid and a waitFor configuration', function()
  for _, lang in ipairs(languages) do
    local configs = dap.configurations[lang]
    assert(configs, 'no configurations for ' .. lang)
    local kinds = {}
    for _, c in ipairs(configs) do
      eq(c.type, 'latch', lang .. ' ' .. tostring(c.name))
      assert(type(c.name) == 'string' and c.name ~= '', 'unnamed configuration')
      if c.request == 'launch' then
        kinds.launch = c
      else
        eq(c.request, 'attach', lang .. ' ' .. c.name)
      end
      if c.pid then
        kinds.pid = c
      end
      if c.waitFor then
        kinds.waitFor = c
      end
    end
    assert(kinds.launch and kinds.pid and kinds.waitFor, lang .. ': ' .. vim.inspect(configs))
    eq(kinds.launch.name, 'latch: launch a program', lang .. ' launch name')
    eq(#configs, 3, lang .. ' configuration count')
  end
end)

check("every configuration's keys are in its request's schema (or type/request/name), values of its types, required keys there", function()
  for _, lang in ipairs(languages) do
    for _, c in ipairs(dap.configurations[lang]) do
      local request_schema = assert(schemas[c.request], c.name .. ': request ' .. tostring(c.request))
      for key, value in pairs(c) do
        assert(allowed[c.request][key], ('%s %q: key %q is not in schemas/%s.schema.json'):format(lang, c.name, key, c.request))
        -- Functions are evaluated by nvim-dap when the session starts: checked below.
        local prop = request_schema.properties[key]
        if type(value) ~= 'function' and prop then
          assert(fits(value, prop, request_schema), ('%s %q: %s = %s does not fit %s'):format(
            lang, c.name, key, vim.inspect(value), vim.json.encode(prop)))
        end
      end
      for _, key in ipairs(request_schema.required or {}) do
        assert(c[key] ~= nil, ('%s %q: the required %q is missing'):format(lang, c.name, key))
      end
    end
  end
  -- The launch schema, read now, still requires `program`: the check above means something.
  assert(vim.tbl_contains(schemas.launch.required, 'program'), 'launch schema: program not required')
  -- And the checker rejects what does not fit.
  assert(not fits({ 1 }, schemas.launch.properties.args, schemas.launch), 'args of numbers accepted')
  assert(not fits('x', schemas.launch.properties.stopAtMain, schemas.launch), 'a string stopAtMain accepted')
end)

local function config_with(lang, key)
  for _, c in ipairs(dap.configurations[lang]) do
    if c[key] then
      return c
    end
  end
end

check('the launch configuration asks for the program (in the current directory); an empty answer aborts; cwd is the current directory when it starts', function()
  local real_input = vim.fn.input
  local answer, prompts = nil, {}
  vim.fn.input = function(prompt, default, completion)
    table.insert(prompts, { prompt, default, completion })
    return answer
  end
  local ok, err = pcall(function()
    for _, lang in ipairs(languages) do
      local c = config_with(lang, 'program')
      eq(c.request, 'launch', lang .. ' program configuration')
      answer = '/usr/bin/true'
      eq(c.program(), '/usr/bin/true', lang .. ' program')
      assert(fits(c.program(), schemas.launch.properties.program, schemas.launch), 'a program answer does not fit the schema')
      answer = '  ./a.out '
      eq(c.program(), './a.out', lang .. ' program trimmed')
      answer = ''
      assert(c.program() == dap.ABORT, lang .. ': an empty answer must abort')
      eq(c.args, {}, lang .. ' args')
      eq(c.cwd(), vim.fn.getcwd(), lang .. ' cwd')
      eq(c.stopAtMain, false, lang .. ' stopAtMain')
    end
  end)
  vim.fn.input = real_input
  assert(ok, err)
  eq(#prompts, 4 * #languages, 'prompts shown')
  assert(prompts[1][1]:find('program'), 'the prompt should ask for a program: ' .. prompts[1][1])
  eq({ prompts[1][2], prompts[1][3] }, { vim.fn.getcwd() .. '/', 'file' }, 'prompt default and completion')
end)

check("the pid configuration passes pick_process's answer through (a pid, or ABORT)", function()
  for _, lang in ipairs(languages) do
    local c = config_with(lang, 'pid')
    utils.next_pid = 4242
    eq(c.pid(), 4242, lang .. ' pid')
    assert(fits(c.pid(), schema.properties.pid), 'a picked pid does not fit the schema')
    utils.next_pid = dap.ABORT
    assert(c.pid() == dap.ABORT, lang .. ': a cancelled pick must stay ABORT')
  end
  eq(utils.calls, 3 * #languages, 'pick_process calls')
end)

check('the waitFor configuration asks for a name; an empty answer aborts', function()
  local real_input = vim.fn.input
  local answer, prompts = nil, {}
  vim.fn.input = function(prompt)
    table.insert(prompts, prompt)
    return answer
  end
  local ok, err = pcall(function()
    for _, lang in ipairs(languages) do
      local c = config_with(lang, 'waitFor')
      answer = 'myserver'
      eq(c.waitFor(), 'myserver', lang .. ' waitFor')
      answer = '  spaced  '
      eq(c.waitFor(), 'spaced', lang .. ' waitFor trimmed')
      -- vim.fn.input answers '' on <Esc> as on an empty line.
      answer = ''
      assert(c.waitFor() == dap.ABORT, lang .. ': an empty answer must abort')
    end
  end)
  vim.fn.input = real_input
  assert(ok, err)
  eq(#prompts, 3 * #languages, 'prompts shown')
  assert(prompts[1]:find('name'), 'the prompt should ask for a name: ' .. prompts[1])
end)

check('existing configurations are kept and a second setup() adds no duplicates', function()
  local mine = { type = 'codelldb', request = 'launch', name = 'mine' }
  dap.configurations.rust = { mine }
  require('latch').setup({ path = latch_bin })
  require('latch').setup({ path = latch_bin })
  eq(#dap.configurations.rust, 4, 'rust configuration count')
  assert(dap.configurations.rust[1] == mine, 'the existing configuration must stay first')
  eq(#dap.configurations.c, 3, 'c configuration count after setup() twice')
end)

check("transport = 'tcp' registers a server adapter that starts `latch dap --listen`", function()
  require('latch').setup({ path = latch_bin, transport = 'tcp' })
  eq(resolve_adapter(), {
    type = 'server',
    host = '127.0.0.1',
    port = '${port}',
    executable = { command = latch_bin, args = { 'dap', '--listen', '127.0.0.1:${port}' } },
  }, 'server adapter')
  require('latch').setup({ path = latch_bin })
end)

check('a latch that is not executable gives an error naming the fix', function()
  notes = {}
  local missing = vim.fn.tempname() .. '/no-latch-here'
  require('latch').setup({ path = missing })
  eq(#notes, 1, 'notifications')
  eq(notes[1].level, vim.log.levels.ERROR, 'level')
  for _, needle in ipairs({ missing, 'path =', 'cargo install --path adapter' }) do
    assert(notes[1].msg:find(needle, 1, true), ('message %q lacks %q'):format(notes[1].msg, needle))
  end
  require('latch').setup({ path = latch_bin })
end)

-- A real session: Neovim starts the adapter exactly as registered and sends the pid
-- configuration as nvim-dap does (every field, functions evaluated, type/request/name
-- included) to a real target whose pid the Rust test passes in LATCH_TARGET_PID. Only
-- nvim-dap's client logic is replaced, by the few lines below; the Rust test then
-- checks from /proc that the target runs on.
local target_pid = tonumber(os.getenv('LATCH_TARGET_PID') or '')

-- A free loopback port, as nvim-dap picks one for `${port}`.
local function free_port()
  local probe = vim.uv.new_tcp()
  probe:bind('127.0.0.1', 0)
  local port = probe:getsockname().port
  probe:close()
  return port
end

-- Starts the adapter as registered. Over stdio the DAP stream is the process's
-- stdin/stdout; a `server` adapter's executable is started with `${port}` filled in,
-- then connected to (retried until it listens, as nvim-dap does). Returns
-- { write(data), close(), wait() -> exit code } and feeds received bytes to `on_data`.
local function open_adapter(adapter, on_data)
  if adapter.type == 'executable' then
    local proc = vim.system(vim.list_extend({ adapter.command }, adapter.args), {
      stdin = true,
      stdout = function(_, data)
        on_data(data or '')
      end,
    })
    return {
      write = function(data)
        proc:write(data)
      end,
      kill = function()
        proc:kill('sigterm') -- latch detaches on SIGTERM too
      end,
      -- Closing latch's stdin: the client is gone, latch ends.
      close = function()
        proc:write(nil)
      end,
      wait = function()
        return proc:wait(10000).code
      end,
    }
  end
  local port = free_port()
  local args = vim.tbl_map(function(arg)
    return (arg:gsub('%${port}', tostring(port)))
  end, adapter.executable.args)
  local proc = vim.system(vim.list_extend({ adapter.executable.command }, args), {})
  -- One connection attempt at a time, and a new one only after the last was refused:
  -- closing an attempt whose handshake the kernel had already completed would hand
  -- latch (which serves the first client it accepts) a connection that is already gone.
  local client, connected, attempting
  vim.wait(10000, function()
    if connected then
      return true
    end
    if not attempting then
      attempting = true
      local attempt = vim.uv.new_tcp()
      client = attempt
      attempt:connect(adapter.host, port, function(err)
        if err then
          attempt:close()
          attempting = false
          return
        end
        connected = true
        attempt:read_start(function(_, data)
          on_data(data or '')
        end)
      end)
    end
    return false
  end, 20)
  assert(connected, 'could not connect to latch --listen on port ' .. port)
  return {
    write = function(data)
      client:write(data)
    end,
    kill = function()
      proc:kill('sigterm')
    end,
    -- The client closes the connection; a one-client latch then ends.
    close = function()
      client:close()
    end,
    wait = function()
      return proc:wait(10000).code
    end,
  }
end

-- Starts the adapter (see `open_adapter`) and speaks DAP to it as nvim-dap does:
-- returns the connection, the list every message received is appended to (decoded),
-- and `send(command, arguments)`, which answers the request's seq.
local function connect(adapter)
  local seq, buffer, messages = 0, '', {}
  local conn = open_adapter(adapter, function(data)
    buffer = buffer .. data
    -- DAP framing: "Content-Length: N\r\n\r\n" then N bytes of JSON.
    while true do
      local header_end = buffer:find('\r\n\r\n', 1, true)
      local len = header_end and tonumber(buffer:sub(1, header_end):match('Content%-Length: (%d+)'))
      if not len or #buffer < header_end + 3 + len then
        break
      end
      table.insert(messages, vim.json.decode(buffer:sub(header_end + 4, header_end + 3 + len)))
      buffer = buffer:sub(header_end + 4 + len)
    end
  end)
  local function send(command, arguments)
    seq = seq + 1
    local body = vim.json.encode({ seq = seq, type = 'request', command = command, arguments = arguments })
    conn.write(('Content-Length: %d\r\n\r\n%s'):format(#body, body))
    return seq
  end
  return conn, messages, send
end

-- A child session (latch's startDebugging, with followForks): the function adapter
-- gets the configuration latch sent, with `latchChildSession` naming the unix socket
-- of the latch that holds the child. nvim-dap's startDebugging handler runs only an
-- `executable` or `server` adapter (not `pipe`; lua/dap/session.lua, start_debugging),
-- so the adapter must be one of those, and it must reach that socket without starting
-- another debugger: `latch dap --connect SOCKET` only carries DAP. Here the socket is the
-- test's own listener, which answers one request through the adapter exactly as started.
check('a child session (latchChildSession) gets an executable adapter that carries DAP to and from that socket, no new debugger', function()
  require('latch').setup({ path = latch_bin })
  local dir = vim.fn.tempname()
  vim.fn.mkdir(dir, 'p')
  local socket = dir .. '/child.sock'
  local server = assert(vim.uv.new_pipe(false))
  assert(server:bind(socket))
  local received, peer = '', nil
  server:listen(1, function()
    peer = assert(vim.uv.new_pipe(false))
    server:accept(peer)
    peer:read_start(function(_, data)
      if data then
        received = received .. data
      end
    end)
  end)
  local config = { type = 'latch', request = 'attach', name = 'launchee (pid 12, forked by 11)', pid = 12,
    latchChildSession = socket }
  local adapter = resolve_adapter(config)
  assert(adapter, 'the adapter never called back')
  assert(adapter.type == 'executable' or adapter.type == 'server',
    "nvim-dap's startDebugging runs only executable and server adapters: " .. vim.inspect(adapter))
  eq({ adapter.command, adapter.args }, { latch_bin, { 'dap', '--connect', socket } },
    'the child adapter is latch\'s bridge to the socket')
  local conn, messages, send = connect(adapter)
  local ok, err = pcall(function()
    local seq = send('initialize', { clientID = 'neovim', adapterID = 'latch' })
    assert(vim.wait(10000, function()
      return received:find('"command":"initialize"', 1, true) ~= nil
    end, 5), 'the request never reached the socket: ' .. vim.inspect(received))
    local body = vim.json.encode({ seq = 1, type = 'response', request_seq = seq, success = true,
      command = 'initialize', body = { supportsConfigurationDoneRequest = true } })
    peer:write(('Content-Length: %d\r\n\r\n%s'):format(#body, body))
    assert(vim.wait(10000, function()
      return #messages > 0
    end, 5), 'no answer came back through the adapter')
    eq(messages[1].request_seq, seq, 'answer request_seq')
    eq(messages[1].body, { supportsConfigurationDoneRequest = true }, 'answer body')
    -- latch closing the socket ends the adapter process, cleanly.
    peer:close()
  end)
  if not ok then
    conn.kill()
  end
  local code = conn.wait()
  server:close()
  assert(ok, err)
  eq(code, 0, 'bridge exit code')

  -- A socket that is gone: an error naming it, and no adapter at all.
  notes = {}
  eq(resolve_adapter(config), nil, 'adapter for a socket that is gone')
  eq(#notes, 1, 'notifications')
  eq(notes[1].level, vim.log.levels.ERROR, 'level')
  assert(notes[1].msg:find(socket, 1, true) and notes[1].msg:find('gone', 1, true), notes[1].msg)
  notes = {}
end)

if target_pid then
  for _, transport in ipairs({ 'stdio', 'tcp' }) do
    check(('the registered %s adapter attaches to a real target with the pid configuration, then detaches'):format(transport), function()
      require('latch').setup({ path = latch_bin, transport = transport })
      local conn, messages, send = connect(resolve_adapter())
      -- Waits (running the event loop) for the first message that matches.
      local function await(what, pred)
        local found
        vim.wait(10000, function()
          for _, m in ipairs(messages) do
            if pred(m) then
              found = m
              return true
            end
          end
          return false
        end, 5)
        assert(found, 'no ' .. what .. ' within 10 s; got ' .. vim.inspect(messages))
        return found
      end
      local function response(id, what)
        local r = await(what .. ' response', function(m)
          return m.type == 'response' and m.request_seq == id
        end)
        assert(r.success, what .. ' failed: ' .. vim.inspect(r))
        return r
      end

      local ok, err = pcall(function()
        response(send('initialize', { clientID = 'neovim', adapterID = 'latch', pathFormat = 'path',
          linesStartAt1 = true, columnsStartAt1 = true }), 'initialize')
        local config = vim.deepcopy(config_with('c', 'pid'))
        utils.next_pid = target_pid
        for key, value in pairs(config) do
          if type(value) == 'function' then
            config[key] = value()
          end
        end
        local attach = send('attach', config)
        local first = await('initialized event', function(m)
          return (m.type == 'event' and m.event == 'initialized')
            or (m.type == 'response' and m.request_seq == attach and not m.success)
        end)
        assert(first.type == 'event', 'attach failed: ' .. vim.inspect(first))
        response(send('configurationDone', vim.empty_dict()), 'configurationDone')
        response(attach, 'attach')
        local stopped = await('stopped event', function(m)
          return m.type == 'event' and m.event == 'stopped'
        end)
        eq(stopped.body.reason, 'entry', 'stopOnEntry stop reason')
        local threads = response(send('threads', vim.empty_dict()), 'threads').body.threads
        assert(vim.iter(threads):any(function(t)
          return t.id == target_pid
        end), 'the main thread is not listed: ' .. vim.inspect(threads))
        -- What dap.disconnect() sends by default: a plain disconnect, latch detaches.
        response(send('disconnect', vim.empty_dict()), 'disconnect')
      end)
      if not ok then
        conn.kill()
      end
      conn.close()
      local code = conn.wait()
      require('latch').setup({ path = latch_bin })
      assert(ok, err)
      eq(code, 0, 'latch exit code')
    end)
  end
end

-- A target that makes short-lived threads (the churn fixture, LATCH_CHURN_PID), attached
-- running, then paused as nvim-dap pauses: it knows threads only from `thread` events
-- (started: add, exited: remove) and needs one to send `pause`. Its table must then
-- agree with the `threads` answer.
local churn_pid = tonumber(os.getenv('LATCH_CHURN_PID') or '')

if churn_pid then
  check('nvim-dap can pause a churning target right after the attach, and its thread events match `threads`', function()
    require('latch').setup({ path = latch_bin })
    local conn, messages, send = connect(resolve_adapter())
    -- The index of the first message after the first `from` that matches, waiting
    -- (with a deadline) for it.
    local function await(what, pred, from)
      local found
      vim.wait(10000, function()
        for i = (from or 0) + 1, #messages do
          if pred(messages[i]) then
            found = i
            return true
          end
        end
        return false
      end, 5)
      assert(found, 'no ' .. what .. ' within 10 s; got ' .. vim.inspect(messages))
      return found
    end
    local function response(id, what)
      local r = messages[await(what .. ' response', function(m)
        return m.type == 'response' and m.request_seq == id
      end)]
      assert(r.success, what .. ' failed: ' .. vim.inspect(r))
      return r
    end
    -- nvim-dap's thread table, from the events among the first `upto` messages.
    local function threads_from_events(upto)
      local threads = {}
      for i = 1, upto do
        local m = messages[i]
        if m.type == 'event' and m.event == 'thread' then
          if m.body.reason == 'started' then
            threads[m.body.threadId] = { id = m.body.threadId }
          elseif m.body.reason == 'exited' then
            threads[m.body.threadId] = nil
          end
        end
      end
      return threads
    end

    local ok, err = pcall(function()
      response(send('initialize', { clientID = 'neovim', adapterID = 'latch', pathFormat = 'path',
        linesStartAt1 = true, columnsStartAt1 = true }), 'initialize')
      local config = vim.deepcopy(config_with('c', 'pid'))
      utils.next_pid = churn_pid
      for key, value in pairs(config) do
        if type(value) == 'function' then
          config[key] = value()
        end
      end
      config.stopOnEntry = false
      local attach = send('attach', config)
      await('initialized event', function(m)
        return (m.type == 'event' and m.event == 'initialized')
          or (m.type == 'response' and m.request_seq == attach and not m.success)
      end)
      response(send('configurationDone', vim.empty_dict()), 'configurationDone')
      response(attach, 'attach')
      -- Right away, as a user pressing pause would: nvim-dap's `pause` with no thread
      -- given needs a thread from its table ("No threads to pause" otherwise). Then
      -- again after running a while (a few of latch's 50 ms windows; not a wait for
      -- anything), threads having come and gone meanwhile.
      for round = 1, 5 do
        local from = #messages
        if round > 1 then
          response(send('continue', { threadId = churn_pid }), 'continue')
          vim.wait(300, function()
            return false
          end, 10)
        end
        local known = vim.tbl_keys(threads_from_events(#messages))
        assert(#known > 0, 'no thread announced to pause: ' .. vim.inspect(messages))
        table.sort(known)
        response(send('pause', { threadId = known[1] }), 'pause')
        local stopped_at = await('stopped event', function(m)
          return m.type == 'event' and m.event == 'stopped'
        end, from)
        local table_ids = vim.tbl_keys(threads_from_events(stopped_at))
        table.sort(table_ids)
        local answer = response(send('threads', vim.empty_dict()), 'threads').body.threads
        local answer_ids = vim.tbl_map(function(t)
          return t.id
        end, answer)
        table.sort(answer_ids)
        eq(table_ids, answer_ids, ('round %d: thread table from events against the threads answer'):format(round))
        assert(vim.tbl_contains(answer_ids, churn_pid), 'the main thread is not listed: ' .. vim.inspect(answer))
      end
      response(send('disconnect', vim.empty_dict()), 'disconnect')
    end)
    if not ok then
      conn.kill()
    end
    conn.close()
    local code = conn.wait()
    assert(ok, err)
    eq(code, 0, 'latch exit code')
  end)
end

-- A line breakpoint and a step, as nvim-dap sends them (`setBreakpoints` with the
-- buffer's path during configuration, `next` on the stopped thread), against the
-- stepping fixture running work() in a loop (LATCH_STEP_PID); the Rust test checks
-- the lines, then from /proc that the target runs on with its code intact.
local step_pid = tonumber(os.getenv('LATCH_STEP_PID') or '')

if step_pid then
  check('nvim-dap stops at a line breakpoint and steps over the next line', function()
    require('latch').setup({ path = latch_bin })
    local conn, messages, send = connect(resolve_adapter())
    local function await(what, pred)
      local found
      vim.wait(10000, function()
        for i, m in ipairs(messages) do
          if pred(m) then
            found = table.remove(messages, i)
            return true
          end
        end
        return false
      end, 5)
      assert(found, 'no ' .. what .. ' within 10 s; got ' .. vim.inspect(messages))
      return found
    end
    local function response(id, what)
      local r = await(what .. ' response', function(m)
        return m.type == 'response' and m.request_seq == id
      end)
      assert(r.success, what .. ' failed: ' .. vim.inspect(r))
      return r
    end
    local function event(name)
      return await(name .. ' event', function(m)
        return m.type == 'event' and m.event == name
      end)
    end
    local source = { path = assert(os.getenv('LATCH_STEP_SOURCE')) }
    local break_line = tonumber(os.getenv('LATCH_STEP_BREAK_LINE'))
    local ok, err = pcall(function()
      response(send('initialize', { clientID = 'neovim', adapterID = 'latch', pathFormat = 'path',
        linesStartAt1 = true, columnsStartAt1 = true }), 'initialize')
      local config = vim.deepcopy(config_with('c', 'pid'))
      utils.next_pid = step_pid
      for key, value in pairs(config) do
        if type(value) == 'function' then
          config[key] = value()
        end
      end
      config.stopOnEntry = false
      local attach = send('attach', config)
      event('initialized')
      -- nvim-dap sends every buffer's breakpoints, then the exception filters.
      local set = response(send('setBreakpoints', { source = source,
        breakpoints = { { line = break_line } }, sourceModified = false }), 'setBreakpoints')
      local bp = set.body.breakpoints[1]
      assert(bp.verified, 'breakpoint not verified: ' .. vim.inspect(bp))
      response(send('setExceptionBreakpoints', { filters = {} }), 'setExceptionBreakpoints')
      response(send('configurationDone', vim.empty_dict()), 'configurationDone')
      response(attach, 'attach')
      local hit = event('stopped')
      eq(hit.body.reason, 'breakpoint', 'stop reason')
      eq(hit.body.hitBreakpointIds, { bp.id }, 'hit breakpoint ids')
      local tid = hit.body.threadId
      local function top()
        local frames = response(send('stackTrace', { threadId = tid, startFrame = 0, levels = 1 }), 'stackTrace')
        return frames.body.stackFrames[1]
      end
      local first = top()
      print(("stopped at %s:%d"):format(first.name, first.line))
      response(send('next', { threadId = tid }), 'next')
      eq(event('stopped').body.reason, 'step', 'next stop reason')
      local second = top()
      print(("stepped to %s:%d"):format(second.name, second.line))
      -- What nvim-dap's scopes and REPL show: work(5)'s argument and, after the step,
      -- its first local, from DWARF; an expression over them; a local set from the REPL.
      local scopes = response(send('scopes', { frameId = second.id }), 'scopes').body.scopes
      eq(vim.tbl_map(function(s) return s.name end, scopes), { 'Arguments', 'Locals', 'Globals', 'Module globals', 'Registers' }, 'scopes')
      local function values_of(reference)
        local found = {}
        for _, v in ipairs(response(send('variables', { variablesReference = reference }), 'variables').body.variables) do
          found[v.name] = v.value
        end
        return found
      end
      eq(values_of(scopes[1].variablesReference).n, '5', 'argument n')
      eq(values_of(scopes[2].variablesReference).m, '6', 'local m after the step')
      local evaluated = response(send('evaluate', { expression = 'm * n', frameId = second.id, context = 'repl' }), 'evaluate')
      eq(evaluated.body.result, '30', 'm * n')
      local set_m = response(send('setVariable', { variablesReference = scopes[2].variablesReference, name = 'm', value = '10' }), 'setVariable')
      eq(set_m.body.value, '10', 'm set')
      response(send('setBreakpoints', { source = source, breakpoints = {}, sourceModified = false }), 'clear')
      response(send('continue', { threadId = tid }), 'continue')
      response(send('disconnect', vim.empty_dict()), 'disconnect')
    end)
    if not ok then
      conn.kill()
    end
    conn.close()
    local code = conn.wait()
    assert(ok, err)
    eq(code, 0, 'latch exit code')
  end)
end

-- Launch, as nvim-dap runs the plugin's launch configuration: the program asked for
-- (LATCH_LAUNCH_PROGRAM, the launchee fixture the Rust test builds), with arguments,
-- an environment and stopAtMain added as a user would in a configuration of their own.
-- It stops at main, continues, its stdout comes as `output` events and its exit status
-- in `exited`.
local launch_program = os.getenv('LATCH_LAUNCH_PROGRAM')

if launch_program then
  check('nvim-dap launches a program with the launch configuration: stops at main, continues, output, exited', function()
    require('latch').setup({ path = latch_bin })
    local conn, messages, send = connect(resolve_adapter())
    local function await(what, pred)
      local found
      vim.wait(10000, function()
        for _, m in ipairs(messages) do
          if pred(m) then
            found = m
            return true
          end
        end
        return false
      end, 5)
      assert(found, 'no ' .. what .. ' within 10 s; got ' .. vim.inspect(messages))
      return found
    end
    local function response(id, what)
      local r = await(what .. ' response', function(m)
        return m.type == 'response' and m.request_seq == id
      end)
      assert(r.success, what .. ' failed: ' .. vim.inspect(r))
      return r
    end
    local function event(name)
      return await(name .. ' event', function(m)
        return m.type == 'event' and m.event == name
      end)
    end
    local ok, err = pcall(function()
      response(send('initialize', { clientID = 'neovim', adapterID = 'latch', pathFormat = 'path',
        linesStartAt1 = true, columnsStartAt1 = true, supportsRunInTerminalRequest = true }), 'initialize')
      local config = vim.deepcopy(config_with('c', 'program'))
      local real_input = vim.fn.input
      vim.fn.input = function()
        return launch_program
      end
      for key, value in pairs(config) do
        if type(value) == 'function' then
          config[key] = value()
        end
      end
      vim.fn.input = real_input
      eq(config.program, launch_program, 'program')
      config.args = { 'one', 'two words' }
      config.env = { LAUNCHEE_GREETING = 'from nvim', LAUNCHEE_EXIT = '5' }
      config.stopAtMain = true
      local launch = send('launch', config)
      local first = await('initialized event', function(m)
        return (m.type == 'event' and m.event == 'initialized')
          or (m.type == 'response' and m.request_seq == launch and not m.success)
      end)
      assert(first.type == 'event', 'launch failed: ' .. vim.inspect(first))
      response(send('setExceptionBreakpoints', { filters = {} }), 'setExceptionBreakpoints')
      response(send('configurationDone', vim.empty_dict()), 'configurationDone')
      response(launch, 'launch')
      local stopped = event('stopped')
      local tid = stopped.body.threadId
      local frames = response(send('stackTrace', { threadId = tid, startFrame = 0, levels = 1 }), 'stackTrace')
      local top = frames.body.stackFrames[1]
      eq(top.name, 'main', 'top frame at the stop')
      print(('launch stopped at %s:%d (%s)'):format(top.name, top.line, stopped.body.reason))
      response(send('continue', { threadId = tid }), 'continue')
      eq(event('exited').body.exitCode, 5, 'exit code')
      local out = ''
      for _, m in ipairs(messages) do
        if m.type == 'event' and m.event == 'output' and m.body.category == 'stdout' then
          out = out .. m.body.output
        end
      end
      local expected = 'arg 1: one\narg 2: two words\ngreeting: from nvim\ncwd: ' .. vim.fn.getcwd() .. '\n'
      eq(out, expected, 'stdout of the program')
      event('terminated')
      response(send('disconnect', vim.empty_dict()), 'disconnect')
    end)
    if not ok then
      conn.kill()
    end
    conn.close()
    local code = conn.wait()
    assert(ok, err)
    eq(code, 0, 'latch exit code')
  end)
end

-- followForks, as nvim-dap handles it: latch's `startDebugging` reverse request
-- carries the child's configuration; nvim-dap calls the adapter function with it
-- (start_debugging in lua/dap/session.lua), starts what it is called back with (an
-- executable or server adapter only), initializes a session over it, and answers the
-- request. Here the child adapter (`latch dap --connect`) reaches the real
-- latch's socket, attaches to the real forked child, sees its thread and its exit.
if launch_program then
  check('followForks: the child session latch offers runs through the plugin\'s child adapter to the real forked child', function()
    require('latch').setup({ path = latch_bin })
    local conn, messages, send = connect(resolve_adapter())
    local child_conn
    local release = vim.fn.tempname()
    -- Waits for the first message of `list` that matches (not taken twice).
    local function await(list, what, pred)
      local found
      vim.wait(10000, function()
        for i, m in ipairs(list) do
          if pred(m) then
            found = table.remove(list, i)
            return true
          end
        end
        return false
      end, 5)
      assert(found, 'no ' .. what .. ' within 10 s; got ' .. vim.inspect(list))
      return found
    end
    local function response(list, id, what)
      local r = await(list, what .. ' response', function(m)
        return m.type == 'response' and m.request_seq == id
      end)
      assert(r.success, what .. ' failed: ' .. vim.inspect(r))
      return r
    end
    local function event(list, name)
      return await(list, name .. ' event', function(m)
        return m.type == 'event' and m.event == name
      end)
    end
    local ok, err = pcall(function()
      -- nvim-dap declares both reverse requests it handles.
      response(messages, send('initialize', { clientID = 'neovim', adapterID = 'latch', pathFormat = 'path',
        linesStartAt1 = true, columnsStartAt1 = true, supportsRunInTerminalRequest = true,
        supportsStartDebuggingRequest = true }), 'initialize')
      local launch = send('launch', { type = 'latch', request = 'launch', name = 'latch: launch a program',
        program = launch_program, args = { 'fork' }, cwd = vim.fn.getcwd(), followForks = true,
        env = { LAUNCHEE_RELEASE = release } })
      event(messages, 'initialized')
      response(messages, send('configurationDone', vim.empty_dict()), 'configurationDone')
      response(messages, launch, 'launch')
      local parent_pid = event(messages, 'process').body.systemProcessId

      local offer = await(messages, 'startDebugging request', function(m)
        return m.type == 'request' and m.command == 'startDebugging'
      end)
      local config = offer.arguments.configuration
      config.request = offer.arguments.request
      eq({ config.type, config.request }, { 'latch', 'attach' }, 'child configuration')
      assert(type(config.pid) == 'number' and config.pid ~= parent_pid, vim.inspect(config))
      assert(type(config.latchChildSession) == 'string', vim.inspect(config))
      local adapter = resolve_adapter(config)
      assert(adapter and (adapter.type == 'executable' or adapter.type == 'server'),
        "nvim-dap's startDebugging runs only executable and server adapters: " .. vim.inspect(adapter))
      local child_messages, child_send
      child_conn, child_messages, child_send = connect(adapter)
      local init = child_send('initialize', { clientID = 'neovim', adapterID = 'latch', pathFormat = 'path',
        linesStartAt1 = true, columnsStartAt1 = true })
      -- nvim-dap answers startDebugging once the child session is initializing.
      local answer = vim.json.encode({ seq = 1000, type = 'response', request_seq = offer.seq, success = true,
        command = 'startDebugging' })
      conn.write(('Content-Length: %d\r\n\r\n%s'):format(#answer, answer))
      response(child_messages, init, 'child initialize')
      local attach = child_send('attach', config)
      event(child_messages, 'initialized')
      response(child_messages, child_send('configurationDone', vim.empty_dict()), 'child configurationDone')
      response(child_messages, attach, 'child attach')
      eq(event(child_messages, 'process').body.systemProcessId, config.pid, 'child process event')
      local threads = response(child_messages, child_send('threads', vim.empty_dict()), 'child threads').body.threads
      eq(vim.tbl_map(function(t)
        return t.id
      end, threads), { config.pid }, 'child threads')
      print(('child session: %s'):format(config.name))

      -- Let the child end (exit 7); the parent reaps it and exits 0.
      vim.fn.writefile({}, release)
      eq(event(child_messages, 'exited').body.exitCode, 7, 'child exit code')
      eq(event(messages, 'exited').body.exitCode, 0, 'parent exit code')
      response(child_messages, child_send('disconnect', vim.empty_dict()), 'child disconnect')
      response(messages, send('disconnect', vim.empty_dict()), 'disconnect')
    end)
    if not ok then
      conn.kill()
      if child_conn then
        child_conn.kill()
      end
    end
    conn.close()
    local code = conn.wait()
    local bridge_code
    if child_conn then
      child_conn.close()
      bridge_code = child_conn.wait()
    end
    os.remove(release)
    assert(ok, err)
    eq(code, 0, 'latch exit code')
    eq(bridge_code, 0, 'child adapter exit code')
  end)
end

print(('nvim: %d passed, %d failed'):format(passed, failed))
os.exit(failed == 0 and passed > 0 and 0 or 1)
