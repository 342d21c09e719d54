// Helpers for Catch2 tests that fork: reaping a child with a deadline and
// counting this process's /dev/shm entries.  Used by test_ring.cpp and
// test_shm_semlock.cpp.
#pragma once
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "mp/shm.h"

namespace luamp::testing {

// Count of /dev/shm entries made by this process.
inline int own_shm_entries() {
  std::string prefix = std::string(shm::kNamePrefix) + std::to_string(getpid()) + "-";
  int n = 0;
  if (DIR* d = opendir("/dev/shm")) {
    while (dirent* e = readdir(d)) {
      if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) == 0) ++n;
    }
    closedir(d);
  }
  return n;
}

// Waits up to `seconds` for pid and returns its wait status; past that,
// kills it and returns -1.
inline int reap(pid_t pid, int seconds = 20) {
  for (int i = 0; i < seconds * 100; ++i) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

}  // namespace luamp::testing
