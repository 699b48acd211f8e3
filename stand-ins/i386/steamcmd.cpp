// The stand-in `linux32/steamcmd`: an i386 program like Valve's, which `steamcmd.sh` runs.
// Like the real one it carries its own C++ runtime and needs only the host's i386 loader,
// libc and libgcc_s (Debian's lib32gcc-s1): on a host without them `steamcmd.sh` fails at
// exec with "No such file or directory", as the real one does.
//
// It then hands over, in the same process, to the stand-in's logic beside it
// (`linux32/steamcmd_stand_in`), keeping its arguments.

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

const char *const kLogic = "steamcmd_stand_in";

// The folder this program was started from (`/proc/self/exe`, not argv[0]).
std::string own_folder() {
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    if (n <= 0) {
        throw std::runtime_error(std::string("cannot read /proc/self/exe: ") +
                                 std::strerror(errno));
    }
    std::string exe(path, static_cast<size_t>(n));
    return exe.substr(0, exe.rfind('/'));
}

}  // namespace

int main(int argc, char **argv) {
    try {
        std::string logic = own_folder() + "/" + kLogic;
        std::vector<char *> args(argv, argv + argc);
        args.push_back(nullptr);
        execv(logic.c_str(), args.data());
        throw std::runtime_error("cannot run " + logic + ": " + std::strerror(errno));
    } catch (const std::exception &e) {
        std::fprintf(stderr, "steamcmd: %s\n", e.what());
        return 1;
    }
}
