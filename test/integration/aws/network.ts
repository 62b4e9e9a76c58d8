// The network a snapshot restore lands in, built on the moto server the way an account has it:
// a VPC with subnets in two availability zones (EC2), a security group of that VPC, a DB subnet
// group over the subnets and a DB parameter group (RDS). Restore tests configure
// projects.<p>.aws.restore with these and read them back with DescribeDBInstances.
import {
  CreateDBParameterGroupCommand,
  CreateDBSubnetGroupCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import {
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { testbed } from '../../env/fixtures.ts';

export interface RestoreNetwork {
  vpcId: string;
  subnetIds: string[];
  securityGroupId: string;
  subnetGroup: string;
  parameterGroup: string;
}

function clientConfig(): {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
} {
  const { endpoint, region, accessKeyId, secretAccessKey } = testbed().rds;
  return { endpoint, region, credentials: { accessKeyId, secretAccessKey } };
}

/** Creates the VPC, subnets, security group, DB subnet group and parameter group named `name`-*. */
export async function createRestoreNetwork(name: string): Promise<RestoreNetwork> {
  const ec2 = new EC2Client(clientConfig());
  const rds = new RDSClient(clientConfig());
  const { region } = testbed().rds;
  const vpc = await ec2.send(new CreateVpcCommand({ CidrBlock: '10.42.0.0/16' }));
  const vpcId = vpc.Vpc?.VpcId ?? '';
  const subnetIds: string[] = [];
  for (const [i, zone] of ['a', 'b'].entries()) {
    const subnet = await ec2.send(
      new CreateSubnetCommand({
        VpcId: vpcId,
        CidrBlock: `10.42.${i + 1}.0/24`,
        AvailabilityZone: `${region}${zone}`,
      }),
    );
    subnetIds.push(subnet.Subnet?.SubnetId ?? '');
  }
  const group = await ec2.send(
    new CreateSecurityGroupCommand({
      GroupName: `${name}-db`,
      Description: 'PostgreSQL from the application subnets',
      VpcId: vpcId,
    }),
  );
  const subnetGroup = `${name}-subnets`;
  await rds.send(
    new CreateDBSubnetGroupCommand({
      DBSubnetGroupName: subnetGroup,
      DBSubnetGroupDescription: 'restored clones',
      SubnetIds: subnetIds,
    }),
  );
  const parameterGroup = `${name}-pg15`;
  await rds.send(
    new CreateDBParameterGroupCommand({
      DBParameterGroupName: parameterGroup,
      DBParameterGroupFamily: 'postgres15',
      Description: 'restored clones',
    }),
  );
  return { vpcId, subnetIds, securityGroupId: group.GroupId ?? '', subnetGroup, parameterGroup };
}

/** Where an instance landed, as DescribeDBInstances reports it (subnets sorted). */
export interface Placement {
  instanceClass: string | undefined;
  subnetGroup: string | undefined;
  vpcId: string | undefined;
  subnetIds: string[];
  securityGroupIds: string[];
  parameterGroups: string[];
}

export async function placementOf(instanceId: string): Promise<Placement> {
  const rds = new RDSClient(clientConfig());
  const out = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: instanceId }));
  const raw = out.DBInstances?.[0];
  const group = raw?.DBSubnetGroup;
  return {
    instanceClass: raw?.DBInstanceClass,
    subnetGroup: group?.DBSubnetGroupName,
    vpcId: group?.VpcId,
    subnetIds: (group?.Subnets ?? []).map((s) => s.SubnetIdentifier ?? '').sort(),
    securityGroupIds: (raw?.VpcSecurityGroups ?? []).map((g) => g.VpcSecurityGroupId ?? ''),
    parameterGroups: (raw?.DBParameterGroups ?? []).map((g) => g.DBParameterGroupName ?? ''),
  };
}

/** The placement a restore configured with `network` and `instanceClass` must produce. */
export function expectedPlacement(network: RestoreNetwork, instanceClass: string): Placement {
  return {
    instanceClass,
    subnetGroup: network.subnetGroup,
    vpcId: network.vpcId,
    subnetIds: [...network.subnetIds].sort(),
    securityGroupIds: [network.securityGroupId],
    parameterGroups: [network.parameterGroup],
  };
}
