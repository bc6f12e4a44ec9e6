-- The load of bench/write_path.py for wrk: registrations and PATCHes with each organisation's own
-- token, in turn (mix "both"), or only one of them. Arguments after `--`: the folder with
-- orgs.txt ("id token" per line), register.jsonl and patch.jsonl (one JSON body per line), and the mix.
-- Prints one WRK_RESULT line of JSON: how many writes were acknowledged (200/201) and refused.

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local function lines(path)
  local found = {}
  for line in io.lines(path) do found[#found + 1] = line end
  return found
end

function init(args)
  local folder, mix_arg = args[1], args[2]
  mix = mix_arg or "both"
  orgs = {}
  for line in io.lines(folder .. "/orgs.txt") do
    local id, token = line:match("(%S+) (%S+)")
    orgs[#orgs + 1] = {"/v1/organisations/" .. id, "Bearer " .. token}
  end
  registrations = lines(folder .. "/register.jsonl")
  patches = lines(folder .. "/patch.jsonl")
  -- threads start at different organisations (a prime apart), so two rarely edit the same one at once
  n = tid * 101
  -- the PATCH bodies have their own count: with the mix "both" n is odd at every PATCH, and the
  -- bodies alternate in kind (bench/write_path.py, --patches mixed)
  p = tid * 101
  acked, refused = 0, 0
end

function request()
  -- wrk checks the script by calling request() once before any thread ran init()
  if orgs == nil then return wrk.format("GET", "/health") end
  n = n + 1
  if mix == "register" or (mix == "both" and n % 2 == 0) then
    return wrk.format("POST", "/v1/organisations", {["Content-Type"] = "application/json"},
                      registrations[n % #registrations + 1])
  end
  local org = orgs[n % #orgs + 1]
  p = p + 1
  return wrk.format("PATCH", org[1], {["Content-Type"] = "application/json", ["Authorization"] = org[2]},
                    patches[p % #patches + 1])
end

function response(status, headers, body)
  if status == 200 or status == 201 then acked = acked + 1 else refused = refused + 1 end
end

function done(summary, latency, requests)
  local a, r = 0, 0
  for _, thread in ipairs(threads) do
    a = a + thread:get("acked")
    r = r + thread:get("refused")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"acked": %d, "refused": %d, "duration_s": %.3f, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_ms": %.2f, "p99_ms": %.2f}\n',
    a, r, summary.duration / 1e6, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
