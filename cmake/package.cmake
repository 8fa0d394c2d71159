# Debian packages with CPack (cd <build> && cpack -G DEB):
#   bop_0.1.0_amd64.deb      the runtime component (libbop.so.0, bop, docs)
#   bop-dev_0.1.0_amd64.deb  the dev component (headers, static archives,
#                            the CMake package, pkg-config files)
# No maintainer scripts: ldconfig runs through dpkg's ldconfig trigger
# (cmake/deb/triggers), so dpkg -r leaves nothing behind, not even a
# "config-files" entry (CPack's generated postinst/postrm would, and they
# come with dpkg-shlibdeps; hence a fixed Depends, which install.deb checks
# against the GLIBC_* symbol versions libbop.so.0 really needs).
set(CPACK_PACKAGE_NAME bop)
set(CPACK_PACKAGE_VENDOR "the bop authors")
set(CPACK_PACKAGE_CONTACT "bop developers <bop-dev@invalid>")
set(CPACK_PACKAGE_VERSION ${bop_VERSION})
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/packages)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # <name>_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION libs)

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME bop)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "libc6 (>= 2.34)")
# shlibs: packages built against libbop.so.0 depend on bop (>= this version).
configure_file(${CMAKE_CURRENT_LIST_DIR}/deb/shlibs.in ${CMAKE_CURRENT_BINARY_DIR}/deb/shlibs @ONLY)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_BINARY_DIR}/deb/shlibs ${CMAKE_CURRENT_LIST_DIR}/deb/triggers)
# A description's first line is the package's summary (Debian's form).
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
    "fast general-purpose memory allocator\nlibbop.so.0 replaces malloc and operator new (LD_PRELOAD, or the\nbop launcher: bop [--stats] program args...).")
if(EXISTS ${BOP_REPORT_TOOL})
  set(CPACK_DEBIAN_RUNTIME_PACKAGE_RECOMMENDS python3)  # bop-report is a python3 script
endif()

set(CPACK_DEBIAN_DEV_PACKAGE_NAME bop-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "bop (= ${bop_VERSION})")
set(CPACK_COMPONENT_DEV_DESCRIPTION
    "fast general-purpose memory allocator: development files\nHeaders, libbop.a, libbop-override.a, the CMake package (find_package(bop))\nand pkg-config files (bop, bop-override).")

include(CPack)
