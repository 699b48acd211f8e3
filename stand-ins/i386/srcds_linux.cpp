// The stand-in `srcds_linux`: an i386 program, dynamically linked like L4D2's own (libstdc++
// and libgcc_s through the i386 loader, /lib/ld-linux.so.2). On a host without the 32-bit
// runtime it cannot even be executed, as the real one cannot: `exec` fails with "not found"
// and `srcds_run` exits 127.
//
// It then hands over, in the same process, to the stand-in server's logic in `bin/`, where
// the real tree keeps the engine (`srcds_run` has made the tree the working directory).

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

const char *const kEngine = "bin/srcds_stand_in";

std::vector<char *> handover_arguments(int argc, char **argv) {
    if (argc < 1) {
        throw std::runtime_error("no program name");
    }
    std::vector<char *> args(argv, argv + argc);
    args.push_back(nullptr);
    return args;
}

}  // namespace

int main(int argc, char **argv) {
    try {
        std::vector<char *> args = handover_arguments(argc, argv);
        if (access(kEngine, X_OK) != 0) {
            std::string reason = std::strerror(errno);
            throw std::runtime_error(std::string("Failed to open dedicated_srv.so (") + kEngine +
                                     ": " + reason + ")");
        }
        execv(kEngine, args.data());
        throw std::runtime_error(std::string("Failed to load the engine: ") + std::strerror(errno));
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
