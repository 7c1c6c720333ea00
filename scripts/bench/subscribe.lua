-- wrk script: POST /api/subscriptions, a new (user, topic) pair on every request.
local counter = 0
local token = os.getenv("TOKEN")
local thread_id = 0
local threads = 0

function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"user_id":"bench_%d_%d","topic_name":"load_%05d"}',
    thread_id, counter, counter % 9000)
  return wrk.format("POST", "/api/subscriptions", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }, body)
end
