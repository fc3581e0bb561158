# Builds tools/fashion_mnist_png, the standalone Fashion-MNIST -> PNG tree converter (see the
# comment at the top of fashion_mnist_png.cc). include()d from the top-level CMakeLists.txt.
# Needs zlib and libspng (Debian: zlib1g-dev, libspng-dev); nothing else from shardset.

find_package(ZLIB REQUIRED)

# Debian's libspng-dev ships only a pkg-config file (spng.pc), no CMake package config, so
# find_package(spng) cannot work there; use pkg-config.
find_package(PkgConfig REQUIRED)
if(NOT TARGET PkgConfig::SPNG)
  pkg_check_modules(SPNG REQUIRED IMPORTED_TARGET spng)
endif()

add_executable(fashion_mnist_png ${CMAKE_CURRENT_LIST_DIR}/fashion_mnist_png.cc)
target_compile_features(fashion_mnist_png PRIVATE cxx_std_20)
target_link_libraries(fashion_mnist_png PRIVATE ZLIB::ZLIB PkgConfig::SPNG)
