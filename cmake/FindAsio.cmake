# Debian's libasio-dev ships no CMake package: find the header-only library and
# expose it as the imported target Asio::asio.
find_path(ASIO_INCLUDE_DIR asio.hpp)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Asio REQUIRED_VARS ASIO_INCLUDE_DIR)
if(Asio_FOUND AND NOT TARGET Asio::asio)
  add_library(Asio::asio INTERFACE IMPORTED)
  # ASIO_DISABLE_STD_ALIGNED_ALLOC: asio 1.22 decides between aligned_alloc/free and
  # operator new/delete for its handler memory by whether libstdc++'s <bits/c++config.h> was
  # included before <asio.hpp>. Two translation units that include them in different orders
  # then hold different inline aligned_new/aligned_delete, the linker keeps one of each, and
  # memory from aligned_alloc is released with operator delete (AddressSanitizer's
  # alloc-dealloc-mismatch, valgrind's "Mismatched free"). One fixed choice for every unit.
  set_target_properties(Asio::asio PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${ASIO_INCLUDE_DIR}"
    INTERFACE_COMPILE_DEFINITIONS "ASIO_STANDALONE;ASIO_NO_DEPRECATED;ASIO_DISABLE_STD_ALIGNED_ALLOC")
  target_link_libraries(Asio::asio INTERFACE Threads::Threads)
endif()
