/* numa: set_mempolicy round-trips through get_mempolicy; bad modes and nodes are refused. */
#include <errno.h>

#include "rsx/numa.h"
#include "t_helpers.h"

int main(void)
{
	int mode = -1, node = -2;

	T_EQ(rsx_numa_set_mempolicy(RSX_MPOL_BIND, 0), 0);
	T_EQ(rsx_numa_get_mempolicy(&mode, &node), 0);
	T_EQ(mode, RSX_MPOL_BIND);
	T_EQ(node, 0);
	T_EQ(rsx_numa_set_mempolicy(RSX_MPOL_PREFERRED, 0), 0);
	T_EQ(rsx_numa_get_mempolicy(&mode, &node), 0);
	T_EQ(mode, RSX_MPOL_PREFERRED);
	T_EQ(node, 0);
	T_EQ(rsx_numa_set_mempolicy(RSX_MPOL_DEFAULT, 0), 0);
	T_EQ(rsx_numa_get_mempolicy(&mode, &node), 0);
	T_EQ(mode, RSX_MPOL_DEFAULT);
	T_EQ(node, -1);

	T_EQ(rsx_numa_set_mempolicy(7, 0), -EINVAL);
	T_EQ(rsx_numa_set_mempolicy(RSX_MPOL_BIND, -1), -EINVAL);
	T_EQ(rsx_numa_set_mempolicy(RSX_MPOL_BIND, RSX_NUMA_MAX_NODE + 1), -EINVAL);
	/* a node that does not exist here: the kernel says EINVAL */
	T_EQ(rsx_numa_set_mempolicy(RSX_MPOL_BIND, RSX_NUMA_MAX_NODE), -EINVAL);
	T_EQ(rsx_numa_get_mempolicy(NULL, &node), -EINVAL);
	T_DONE();
}
