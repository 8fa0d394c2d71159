# Install rules (GNUInstallDirs), the CMake package (find_package(bop)) and
# the pkg-config files.  Two components, which package.cmake turns into two
# Debian packages:
#   runtime  libbop.so.0 (+ .so.0.1.0), the bop launcher, bop-report, docs
#   dev      headers, the libbop.so link, libbop.a, libbop-override.a,
#            lib/cmake/bop, lib/pkgconfig/bop.pc and bop-override.pc
#
# Installed targets (bopTargets.cmake):
#   bop::bop         libbop.so: the API; as the LD_PRELOAD library it also
#                    serves malloc/new for the whole program it is linked into
#   bop::bop_static  libbop.a: the API only, malloc untouched (in-tree bop::bop)
#   bop::override    libbop-override.a linked whole, so the executable's own
#                    malloc and operator new are bop's (in-tree bop::override)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set_target_properties(bop_shared PROPERTIES
  VERSION ${bop_VERSION} SOVERSION ${bop_VERSION_MAJOR} EXPORT_NAME bop)
set_target_properties(bop PROPERTIES EXPORT_NAME bop_static)
add_library(bop::bop_static ALIAS bop)  # the installed name, also in-tree

# The static override as an archive.  The linker takes an archive member only
# when the program's own objects name one of its symbols; a program that
# allocates only through libc or other libraries (strdup, fopen, ...) names
# none and would keep glibc's malloc, so bop::override links it whole
# (--whole-archive).  bop::override_archive is exported only for that.
add_library(bop_override_archive STATIC
  $<TARGET_OBJECTS:bop_objects> $<TARGET_OBJECTS:bop_override_objects>)
set_target_properties(bop_override_archive PROPERTIES
  OUTPUT_NAME bop-override EXPORT_NAME override_archive)
target_link_libraries(bop_override_archive INTERFACE Threads::Threads)

add_library(bop_override_installed INTERFACE)
set_target_properties(bop_override_installed PROPERTIES EXPORT_NAME override)
# (CMake 3.25 does not rename a target inside $<LINK_LIBRARY> on export.)
target_link_libraries(bop_override_installed INTERFACE
  "$<LINK_LIBRARY:WHOLE_ARCHIVE,$<BUILD_INTERFACE:bop_override_archive>$<INSTALL_INTERFACE:bop::override_archive>>"
  Threads::Threads)
target_include_directories(bop_override_installed INTERFACE
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)

# The C++ headers (allocator.hpp, ...) need C++20; C users are not affected.
foreach(target IN ITEMS bop bop_shared bop_override_installed)
  target_compile_features(${target} INTERFACE cxx_std_20)
endforeach()

# ---- files ----------------------------------------------------------------
install(TARGETS bop_shared EXPORT bopTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev)
install(TARGETS bop bop_override_archive bop_override_installed EXPORT bopTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/bop ${BOP_GENERATED_INCLUDE_DIR}/bop
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)

install(PROGRAMS ${CMAKE_CURRENT_BINARY_DIR}/install-tree/bop
  DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
if(EXISTS ${BOP_REPORT_TOOL})
  install(PROGRAMS ${BOP_REPORT_TOOL} DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
endif()
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT runtime)

# ---- CMake package: find_package(bop 0.1 CONFIG REQUIRED) ------------------
set(_bop_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/bop)
install(EXPORT bopTargets NAMESPACE bop:: DESTINATION ${_bop_cmake_dir} COMPONENT dev)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/bopConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/install-tree/bopConfig.cmake INSTALL_DESTINATION ${_bop_cmake_dir})
# 0.x: a minor release may break the API, so 0.1 accepts 0.1.* only.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/install-tree/bopConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/install-tree/bopConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/install-tree/bopConfigVersion.cmake
  DESTINATION ${_bop_cmake_dir} COMPONENT dev)

# ---- pkg-config: bop.pc, bop-override.pc -----------------------------------
# Written when installing, so they name the prefix actually installed to
# (cmake --install --prefix, or /usr inside the Debian package).  Each
# install writes its own copy (named by the destination), so an install and
# a cpack run at the same time cannot swap prefixes.
foreach(dir IN ITEMS LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(_bop_pc_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(_bop_pc_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")  # a literal ${prefix}
  endif()
endforeach()
set(_bop_pc_destination ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(NOT IS_ABSOLUTE ${_bop_pc_destination})
  set(_bop_pc_destination "\${CMAKE_INSTALL_PREFIX}/${_bop_pc_destination}")
endif()
foreach(pc IN ITEMS bop bop-override)
  install(CODE "
    set(BOP_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
    set(BOP_PC_LIBDIR [[${_bop_pc_LIBDIR}]])
    set(BOP_PC_INCLUDEDIR [[${_bop_pc_INCLUDEDIR}]])
    set(bop_VERSION ${bop_VERSION})
    string(MD5 _bop_pc_key \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}\")
    set(_bop_pc_file \"${CMAKE_CURRENT_BINARY_DIR}/install-tree/pkgconfig-\${_bop_pc_key}/${pc}.pc\")
    configure_file(\"${CMAKE_CURRENT_LIST_DIR}/${pc}.pc.in\" \"\${_bop_pc_file}\" @ONLY)
    file(INSTALL DESTINATION \"${_bop_pc_destination}\" TYPE FILE FILES \"\${_bop_pc_file}\")"
    COMPONENT dev)
endforeach()
