# The bop launcher (tools/bop.in, a POSIX sh script): generated twice, once
# for the build tree (<build>/bin/bop, finding <build>/libbop.so.0) and once
# for the install tree (<bindir>/bop, finding <libdir>/libbop.so.0); both
# find the library relative to their own directory.  tools/bop-report, the
# renderer behind `bop report`, is copied beside the build-tree launcher when
# it exists (install.cmake installs it the same way).
include(GNUInstallDirs)
set(BOP_LAUNCHER_BUILD_DIR ${CMAKE_CURRENT_BINARY_DIR}/bin)
set(_bop_lib_output_dir ${CMAKE_LIBRARY_OUTPUT_DIRECTORY})
if(NOT _bop_lib_output_dir)
  set(_bop_lib_output_dir ${CMAKE_CURRENT_BINARY_DIR})
endif()
set(_bop_launcher_permissions
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

file(RELATIVE_PATH BOP_LAUNCHER_LIBDIR ${BOP_LAUNCHER_BUILD_DIR} ${_bop_lib_output_dir})
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/tools/bop.in ${BOP_LAUNCHER_BUILD_DIR}/bop @ONLY
               FILE_PERMISSIONS ${_bop_launcher_permissions})

file(RELATIVE_PATH BOP_LAUNCHER_LIBDIR ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/tools/bop.in
               ${CMAKE_CURRENT_BINARY_DIR}/install-tree/bop @ONLY
               FILE_PERMISSIONS ${_bop_launcher_permissions})

set(BOP_REPORT_TOOL ${CMAKE_CURRENT_SOURCE_DIR}/tools/bop-report)
if(EXISTS ${BOP_REPORT_TOOL})
  configure_file(${BOP_REPORT_TOOL} ${BOP_LAUNCHER_BUILD_DIR}/bop-report COPYONLY
                 FILE_PERMISSIONS ${_bop_launcher_permissions})
endif()
