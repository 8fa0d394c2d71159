# The version header: project(bop VERSION ...) is the only place the version
# is written; this generates <bop/version.h> from it (included by <bop/bop.h>)
# into the build tree, and gives every target that compiles or exposes bop.h
# that directory.  install.cmake installs the header beside the others.
set(BOP_GENERATED_INCLUDE_DIR ${CMAKE_CURRENT_BINARY_DIR}/include)
configure_file(${CMAKE_CURRENT_LIST_DIR}/version.h.in ${BOP_GENERATED_INCLUDE_DIR}/bop/version.h
               @ONLY)

foreach(target IN ITEMS bop_objects bop_override_objects)
  target_include_directories(${target} PRIVATE ${BOP_GENERATED_INCLUDE_DIR})
endforeach()
foreach(target IN ITEMS bop bop_shared)
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${BOP_GENERATED_INCLUDE_DIR}>)
endforeach()
target_include_directories(bop_override INTERFACE $<BUILD_INTERFACE:${BOP_GENERATED_INCLUDE_DIR}>)
