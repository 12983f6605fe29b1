# expect: fail: time limit
import time

while True:
    time.sleep(0.01)
