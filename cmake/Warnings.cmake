# switchyard_warnings(<target>): the warning set for our own code. Third-party
# sources (llhttp) are compiled without it.
function(switchyard_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wshadow -Wnon-virtual-dtor
                                           -Wimplicit-fallthrough)
endfunction()

# switchyard_library(<name> SOURCES ... DEPS ...): one folder, one library.
function(switchyard_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${SWITCHYARD_ROOT})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  switchyard_warnings(${name})
endfunction()
