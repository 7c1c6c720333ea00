-- wrk script: POST /api/subscriptions, a new (user, topic) pair on every request.
-- seed_load made users user_0000..user_9999, each subscribed to the active topics
-- (u*7 + k*901) % 9000 for k in 0..9; the offsets below (1..900 from u*7, 450 per
-- thread) never meet a multiple of 901, so every pair is new and every answer a 201.
local counter = 0
local token = os.getenv("TOKEN")
local thread_id = 0
local threads = 0
local users, active = 10000, 9000

function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

function request()
  local user = counter % users
  local offset = 1 + thread_id * 450 + math.floor(counter / users)
  counter = counter + 1
  local body = string.format('{"user_id":"user_%04d","topic_name":"load_%05d"}',
    user, (user * 7 + offset) % active)
  return wrk.format("POST", "/api/subscriptions", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }, body)
end
