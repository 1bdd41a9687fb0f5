-- NOT nvim-dap's dap.utils: a stand-in for tests/nvim/test.lua (see ../dap/init.lua).
-- The test sets `next_pid` to what the "user" picks.
local M = { next_pid = nil, calls = 0 }

function M.pick_process()
  M.calls = M.calls + 1
  return M.next_pid
end

return M
